# syntax=docker/dockerfile:1
# Two images from one file, built with the same make targets and lock files as CI:
#   docker build --target nlu -t defector-voices-nlu .  Rasa 3.6 (Python 3.10), model trained in
#   docker build --target app -t defector-voices-app .  the bot and the dashboard (Python 3.11)
# docker-compose.yml runs them with PostgreSQL; docs/operations.md explains deployment.
# Base images are pinned to exact versions; to pin by digest, pass e.g.
#   --build-arg APP_BASE=python:3.11.11-slim-bookworm@sha256:<digest>
ARG NLU_BASE=python:3.10.16-slim-bookworm
ARG APP_BASE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------- NLU: environment and model
FROM ${NLU_BASE} AS nlu-build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make=4.3-4.1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile ./
COPY scripts/ scripts/
COPY requirements/ requirements/
RUN make install-nlu
COPY config.yml domain.yml ./
COPY nlu/ nlu/
# The model is named after the hash of what it was trained from, as in every other checkout.
RUN make train

FROM ${NLU_BASE} AS nlu
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rasa
WORKDIR /app
COPY --from=nlu-build /app/.venv-nlu /app/.venv-nlu
COPY --from=nlu-build /app/models/ /app/models/
# Rasa writes its config and caches under HOME; the root filesystem may be read-only.
ENV RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 HOME=/tmp PATH=/app/.venv-nlu/bin:$PATH
USER 10001
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)"]
# NLU_AUTH_TOKEN must be set: the app sends it with every request (a shell expands it).
CMD ["sh", "-c", "exec rasa run --enable-api -m /app/models -i 0.0.0.0 -p 5005 --auth-token=\"${NLU_AUTH_TOKEN:?NLU_AUTH_TOKEN must be set}\""]

# ---------------------------------------------------------------- app: bot and dashboard
FROM ${APP_BASE} AS app-build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make=4.3-4.1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile pyproject.toml ./
COPY scripts/ scripts/
COPY requirements/ requirements/
COPY bot/ bot/
# The production locks only: the development tools (pytest, ruff, mypy, playwright) stay out.
RUN make install-app APP_LOCKS=requirements/app.txt

FROM ${APP_BASE} AS app
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bot \
 && mkdir /data && chown 10001:10001 /data && chmod 0700 /data
WORKDIR /app
COPY --from=app-build /app/.venv /app/.venv
COPY pyproject.toml alembic.ini ./
COPY bot/ bot/
COPY responses/ responses/
# LISTEN_PORT: the listener (webhook, /healthz, /readyz, /metrics) runs in both modes here,
# so the health check below always has something to ask.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    CONTENT_DIR=/app/responses \
    LISTEN_HOST=0.0.0.0 \
    LISTEN_PORT=8081 \
    LOG_FORMAT=json
USER 10001
VOLUME /data
EXPOSE 8081 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
CMD ["python", "-m", "bot", "run"]
