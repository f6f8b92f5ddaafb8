# imagebridge: the bot alone (backends run in their own containers; see docker-compose.yml).
#   docker build -t imagebridge .
#   docker run --env-file .env -v imagebridge-data:/data -v "$PWD/config:/config:ro" imagebridge
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what `pip install .` needs (see .dockerignore); tests and local data stay out of the image.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY adapters ./adapters
COPY storage ./storage
COPY simulators ./simulators
COPY bench ./bench
RUN pip install . \
    && groupadd --system --gid 10001 imagebridge \
    && useradd --system --uid 10001 --gid imagebridge --create-home --home-dir /home/imagebridge imagebridge \
    && mkdir -p /data /config \
    && chown imagebridge:imagebridge /data

# The database and the images live in /data; the config is mounted read-only at /config.
# Secrets (DISCORD_TOKEN, TELEGRAM_TOKEN, IMAGEBRIDGE_BACKEND_<NAME>_PASSWORD/_API_KEY) come from the environment.
# The ops endpoint (/healthz, /metrics) listens on loopback port 9100 so the healthcheck can ask the bot itself;
# set IMAGEBRIDGE_METRICS__HOST=0.0.0.0 to let a Prometheus in another container scrape it.
ENV IMAGEBRIDGE_DATA_DIR=/data \
    IMAGEBRIDGE_CONFIG=/config/imagebridge.toml \
    IMAGEBRIDGE_METRICS__PORT=9100
VOLUME ["/data"]
EXPOSE 9100

WORKDIR /home/imagebridge
USER imagebridge

# Exits non-zero when the bot does not answer or answers 503 (no healthy backend, or a platform disconnected).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["imagebridge", "run"]
