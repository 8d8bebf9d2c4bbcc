# syntax=docker/dockerfile:1
# Two stages: the builder installs leadflow and its dependencies into a venv; the
# runtime image gets that venv, the migrations and nothing else (no compiler, no pip).

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A wheel, not an editable install: the venv must not point back at /src. Then out go
# pgserver (the embedded PostgreSQL of `make run`, 35 MB; leadflow imports it only to
# start that server, and the image always has a DATABASE_URL) and pip itself.
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install /wheels/leadflow-*.whl \
 && /opt/venv/bin/pip uninstall --yes pgserver \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEADFLOW_REQUIRE_DATABASE_URL=1 \
    LEADFLOW_DATA_DIR=/var/lib/leadflow \
    LEADFLOW_FILES_DIR=/var/lib/leadflow/files \
    PORT=8000
# The one writable place: uploaded deal files. Mount a volume there to keep them.
RUN groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --no-create-home --shell /usr/sbin/nologin leadflow \
 && mkdir -p /var/lib/leadflow/files \
 && chown -R leadflow:leadflow /var/lib/leadflow
COPY --from=builder /opt/venv /opt/venv
# `leadflow migrate` finds alembic.ini and migrations/ in the working directory.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
USER leadflow:leadflow
EXPOSE 8000
# LEADFLOW_ROLE: `api` (default) serves the API; `worker` delivers webhooks (no HTTP
# port: its health check passes while the process lives); `all` does both in one process.
ENV LEADFLOW_ROLE=api
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import os, urllib.request; os.environ.get('LEADFLOW_ROLE') == 'worker' or urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# DATABASE_URL is required (postgresql:// or postgresql+asyncpg://); without it both
# commands stop with one line. `exec` makes the server PID 1, so SIGTERM stops it cleanly.
ENTRYPOINT ["/bin/sh", "-c", "leadflow migrate && case \"${LEADFLOW_ROLE}\" in worker) exec leadflow worker --no-migrate ;; all) exec leadflow serve --worker --no-migrate --host 0.0.0.0 --port \"${PORT}\" ;; *) exec leadflow serve --no-migrate --host 0.0.0.0 --port \"${PORT}\" ;; esac"]
