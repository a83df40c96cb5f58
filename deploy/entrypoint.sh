#!/bin/sh
# The gateway's roles, one per container (deploy/Dockerfile's entrypoint; compose and the
# Kubernetes manifests run exactly these):
#   serve        the HTTP gateway: manage.py serve on 0.0.0.0:$PORT with $GATEWAY_WORKERS workers
#   worker       a Celery worker of the usage ledger's tasks (any number of them)
#   beat         Celery beat: the periodic schedule (exactly one)
#   migrate      database migrations (before the gateways start; idempotent)
#   applyconfig  manage.py applyconfig $GATEWAY_CONFIG_FILE (idempotent)
# Anything else runs as a command (`gateway-entrypoint manage.py createtenant acme`).
#
# Secrets from files: for each variable NAME_FILE set, NAME is read from that file (Docker and
# Kubernetes secrets mounted as files), unless NAME is set too. Not for the files the settings
# read themselves: they follow SECRET_KEY_FILE, GATEWAY_SECRETS_KEYS_FILE and the password files
# as they rotate, which a value copied here at start would override (docs/security.md).
set -eu

settings_own=" SECRET_KEY GATEWAY_SECRETS_KEYS DATABASE_URL DATABASE_REPLICA_URL REDIS_URL DATABASE_PASSWORD REDIS_PASSWORD "
for file_var in $(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)_FILE=.*$/\1/p'); do
  case "$settings_own" in *" $file_var "*) continue ;; esac
  eval "current=\${$file_var:-}"
  if [ -z "$current" ]; then
    eval "path=\${${file_var}_FILE}"
    value=$(cat "$path")
    export "$file_var=$value"
  fi
done

python=${PYTHON:-python}
manage="$python ${GATEWAY_MANAGE:-manage.py}"
role=${1:-serve}
[ "$#" -gt 0 ] && shift

case "$role" in
  serve)
    exec $manage serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${GATEWAY_WORKERS:-2}" "$@"
    ;;
  worker)
    exec $python -m celery -A gateway_site worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --queues "${GATEWAY_CELERY_QUEUE:-gateway}" --concurrency "${CELERY_CONCURRENCY:-2}" "$@"
    ;;
  beat)
    exec $python -m celery -A gateway_site beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" "$@"
    ;;
  migrate)
    exec $manage migrate --noinput "$@"
    ;;
  applyconfig)
    exec $manage applyconfig "${GATEWAY_CONFIG_FILE:-/etc/gateway/gateway.yaml}" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
