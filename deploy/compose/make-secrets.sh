#!/bin/sh
# Creates ./secrets with random values, once (an existing file is kept). Compose mounts a file
# secret into the containers as it is, owner and mode included, and the services do not run as
# root (the gateway as uid 10001, PostgreSQL as postgres): the files are world-readable, the
# directory is not (only root and the owner reach them on this machine).
set -eu
cd "$(dirname "$0")"
umask 022
mkdir -p secrets
chmod 700 secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
[ -f secrets/postgres_password ] || random > secrets/postgres_password
[ -f secrets/secret_key ] || random > secrets/secret_key
[ -f secrets/grafana_admin_password ] || random > secrets/grafana_admin_password
[ -f secrets/database_url ] || printf 'postgres://gateway:%s@postgres:5432/gateway\n' "$(cat secrets/postgres_password)" > secrets/database_url
chmod 644 secrets/*
echo "secrets in $(pwd)/secrets"
