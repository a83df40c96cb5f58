#!/bin/sh
# Creates ./secrets with random values, once (an existing file is kept).
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
[ -f secrets/postgres_password ] || random > secrets/postgres_password
[ -f secrets/secret_key ] || random > secrets/secret_key
[ -f secrets/grafana_admin_password ] || random > secrets/grafana_admin_password
[ -f secrets/database_url ] || printf 'postgres://gateway:%s@postgres:5432/gateway\n' "$(cat secrets/postgres_password)" > secrets/database_url
echo "secrets in $(pwd)/secrets"
