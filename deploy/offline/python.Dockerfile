# A stand-in for python:3.11-slim-bookworm built from Debian's own packages (deploy/offline/README.md).
# What deploy/Dockerfile needs of its base: `python` and `pip` on PATH, `python -m venv` with pip
# inside the venv, groupadd/useradd, CA certificates.
ARG DEBIAN_IMAGE=local/debian:bookworm
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       python3.11 python3.11-venv python3-pip python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip \
    && python --version && python3 --version && pip --version
CMD ["python3"]
