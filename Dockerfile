# syntax=docker/dockerfile:1
# Two images from one file (a first version; production hardening is tracked in an issue):
#   docker build --target nlu -t defector-voices-nlu .   Rasa 3.6 (Python 3.10), model baked in
#   docker build --target app -t defector-voices-app .   the bot (Python 3.11), no Rasa inside
# Both install from the same lock files that `make install` and CI use.

FROM python:3.10-slim AS nlu-build
WORKDIR /src
COPY requirements/nlu.txt requirements/nlu.txt
RUN python -m venv /opt/nlu && /opt/nlu/bin/pip install --no-cache-dir -r requirements/nlu.txt
COPY config.yml domain.yml ./
COPY nlu/ nlu/
RUN RASA_TELEMETRY_ENABLED=false /opt/nlu/bin/rasa train nlu --config config.yml --nlu nlu \
      --out /models --fixed-model-name nlu

FROM python:3.10-slim AS nlu
RUN useradd --system --uid 10001 --home-dir /nonexistent rasa
COPY --from=nlu-build /opt/nlu /opt/nlu
COPY --from=nlu-build /models/nlu.tar.gz /models/nlu.tar.gz
ENV RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2
USER 10001
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/')"
# NLU_AUTH_TOKEN must be set; the app sends it with every request.
CMD ["sh", "-c", "exec /opt/nlu/bin/rasa run --enable-api -m /models/nlu.tar.gz -i 0.0.0.0 -p 5005 --auth-token \"$NLU_AUTH_TOKEN\""]

FROM python:3.11-slim AS app
RUN useradd --system --uid 10001 --home-dir /nonexistent bot && mkdir /data && chown 10001 /data
WORKDIR /app
COPY requirements/app.txt requirements/app.txt
RUN pip install --no-cache-dir -r requirements/app.txt
COPY pyproject.toml ./
COPY bot/ bot/
COPY responses/ responses/
RUN pip install --no-cache-dir --no-deps .
ENV DATA_DIR=/data CONTENT_DIR=/app/responses PYTHONUNBUFFERED=1
USER 10001
VOLUME /data
CMD ["python", "-m", "bot", "run"]
