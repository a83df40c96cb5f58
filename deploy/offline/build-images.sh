#!/bin/sh
# Builds, without any container registry, the images that deploy/Dockerfile and
# deploy/compose/compose.yaml start from (deploy/offline/README.md):
#   local/debian:bookworm               debootstrap's minbase variant of Debian 12, imported
#   local/python:3.11-slim-bookworm     Debian's python3.11 with venv and pip
#   local/postgres:15-bookworm          Debian's postgresql-15, initialised like the official image
#   local/redis:7.0-bookworm            Debian's redis-server
#   local/prometheus:bookworm           Debian's prometheus
# Needs root (debootstrap), a Docker daemon, debootstrap, and a Debian mirror: debootstrap's
# default one unless DEBIAN_MIRROR is set. The root file system is made in ROOTFS (a new
# temporary directory unless set; an existing one with apt in it is imported as it is) and
# removed at the end unless ROOTFS was given; an existing local/debian:bookworm is used as it is
# unless FRESH=1. Grafana, the OpenTelemetry collector and Jaeger have no Debian package: they
# are not built (compose.offline.yaml leaves them out).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
network=${DOCKER_BUILD_NETWORK:-host}
images="python postgres redis prometheus"
[ "$#" -gt 0 ] && images="$*"

# An import is a new image each time (and every image on it is built anew): local/debian:bookworm
# is kept when present, unless FRESH=1.
if [ "${FRESH:-0}" = 1 ] || ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
  if [ -n "${ROOTFS:-}" ]; then
    rootfs=$ROOTFS keep=1
  else
    rootfs=$(mktemp -d /tmp/offline-rootfs.XXXXXX) keep=0
  fi
  started=$(date +%s)
  if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
    # shellcheck disable=SC2086  # the mirror is one optional argument
    debootstrap --variant=minbase bookworm "$rootfs" ${DEBIAN_MIRROR:-}
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # apt in the images: no recommended packages
  printf 'APT::Install-Recommends "false";\n' > "$rootfs/etc/apt/apt.conf.d/90offline-no-recommends"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - local/debian:bookworm
  echo "local/debian:bookworm imported in $(( $(date +%s) - started )) s"
  [ "$keep" = 1 ] || rm -rf "$rootfs"
fi

for image in $images; do
  case "$image" in
    python) tag=local/python:3.11-slim-bookworm ;;
    postgres) tag=local/postgres:15-bookworm ;;
    redis) tag=local/redis:7.0-bookworm ;;
    prometheus) tag=local/prometheus:bookworm ;;
    *) echo "unknown image $image (python, postgres, redis, prometheus)" >&2; exit 2 ;;
  esac
  started=$(date +%s)
  docker build --network "$network" -f "$here/$image.Dockerfile" -t "$tag" "$here"
  echo "$tag built in $(( $(date +%s) - started )) s"
done
docker image ls 'local/*'
