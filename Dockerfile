# Contacts Gateway: slim image, non-root, `contacts-gateway serve`.
# Point it at Redis with REDIS_URL (without it the gateway starts an embedded Redis in /app/var).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GATEWAY_HTTP__HOST=0.0.0.0 GATEWAY_HTTP__PORT=8080
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY config ./config
RUN pip install . && useradd --create-home --uid 10001 gateway && mkdir -p /app/var && chown gateway /app/var
USER gateway
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["contacts-gateway", "serve"]
