# syntax=docker/dockerfile:1
# The Pet Store server in production mode: gunicorn with uvicorn workers (gunicorn.conf.py),
# migrations applied at start, non-root, no secrets inside. See README "Production".
#   docker build -t petstore .
#   docker run --rm -p 127.0.0.1:8080:8080 -e PETSTORE_JWT_SECRET=... petstore
# or `docker compose up --build` (compose.yaml: with PostgreSQL and Redis).

# --- build: the pinned dependencies into a virtualenv ----------------------------------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY setup.cfg constraints.txt ./
# The server's own requirements (setup.cfg install_requires), every version pinned by
# constraints.txt; the application itself is copied as source into the runtime stage.
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); \
print(c['options']['install_requires'])" > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt -c constraints.txt

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PETSTORE_VAR_DIR=/app/var
RUN groupadd --system --gid 10001 petstore \
 && useradd --system --uid 10001 --gid petstore --home-dir /app --no-create-home \
    --shell /usr/sbin/nologin petstore
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code owned by root and read-only to the server; only var/ (SQLite file, generated key when
# PETSTORE_JWT_SECRET is unset, media, multiprocess metrics) is its own. .dockerignore keeps
# .venv, var/, node_modules, .git and local .env files out.
COPY . .
RUN python -m compileall -q /app \
 && mkdir -p /app/var \
 && chown petstore:petstore /app/var \
 && chmod 0700 /app/var
USER petstore:petstore
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# gunicorn takes SIGTERM as a graceful stop (PETSTORE_GRACEFUL_TIMEOUT, default 25 s): give the
# container longer than that before it is killed (docker stop -t 30; compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "python manage.py migrate && exec gunicorn -c gunicorn.conf.py -b 0.0.0.0:8080"]
