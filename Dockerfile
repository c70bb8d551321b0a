# syntax=docker/dockerfile:1
# syncsvc container image: `docker build -t syncsvc .`
#
# Two stages: `build` turns the project and its pinned dependencies (constraints.txt, with the
# PostgreSQL driver) into wheels; the runtime stage installs only those wheels on a slim Python,
# runs as an unprivileged user and starts through deploy/docker/entrypoint.sh, which runs
# `syncsvc db upgrade` and then `exec syncsvc serve` on 0.0.0.0:8080.
#
# Without configuration the container serves the built-in demo (bundled directory, SQLite in
# /var/lib/syncsvc); production sets SYNCSVC_* variables or mounts a syncsvc.toml named by
# SYNCSVC_CONFIG (see README.md, "Running in production", and docker-compose.yml, deploy/k8s/).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY syncsvc ./syncsvc
RUN pip wheel --wheel-dir /wheels --constraint constraints.txt ".[postgres]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 syncsvc \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/syncsvc --create-home \
       --shell /usr/sbin/nologin syncsvc
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "syncsvc[postgres]"
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/syncsvc-entrypoint

# Listen on every interface inside the container; JSON logs for the collector.
ENV SYNCSVC_HTTP__HOST=0.0.0.0 \
    SYNCSVC_HTTP__PORT=8080 \
    SYNCSVC_LOG__FORMAT=json
USER 10001:10001
WORKDIR /var/lib/syncsvc
VOLUME ["/var/lib/syncsvc"]
EXPOSE 8080

# Liveness only (the process answers); readiness (/readyz: the store answers) is for orchestrators.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SYNCSVC_HTTP__PORT', '8080'), timeout=4)"]

ENTRYPOINT ["/usr/local/bin/syncsvc-entrypoint"]
CMD ["serve"]
