#!/bin/sh
# The offline redis image's entrypoint: `redis-server` with flags only (no configuration file)
# gets --protected-mode no, as the official image's does; anything else runs as given.
set -eu
if [ "${1:-}" = redis-server ]; then
  case "${2:-}" in
    ""|-*) shift; exec redis-server --protected-mode no "$@" ;;
  esac
fi
exec "$@"
