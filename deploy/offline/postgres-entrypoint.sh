#!/bin/sh
# The offline postgres image's entrypoint: on an empty data directory, initdb with
# POSTGRES_USER as the superuser and its password (POSTGRES_PASSWORD, or the file named by
# POSTGRES_PASSWORD_FILE), create POSTGRES_DB, listen on every address with password
# (scram-sha-256) authentication over TCP; then run the command (postgres).
set -eu
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -z "${POSTGRES_PASSWORD:-}" ]; then
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
if [ "${1:-postgres}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2
    exit 1
  fi
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
  initdb --username="$user" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # the initialising server answers on a private socket only: pg_isready (the health check)
  # does not see it, so nothing connects before the real server runs
  init_socket=$(mktemp -d)
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$init_socket" -w start >/dev/null
  if [ "$database" != postgres ]; then
    createdb --host="$init_socket" --username="$user" "$database"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rmdir "$init_socket"
  echo "initialised $PGDATA (user $user, database $database)"
fi
if [ "${1:-postgres}" = postgres ]; then
  [ "$#" -gt 0 ] && shift
  exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
