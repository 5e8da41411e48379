# syntax=docker/dockerfile:1
# DDS image: one image, the role chosen by the entrypoint's first argument
# (web | worker | migrate | manage <command>; see docker/entrypoint.sh).

# --- build: dependencies into a virtualenv, static files collected -------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected here, so the runtime root filesystem can be read-only.
# DEBUG=1 only for this step: it needs no secret (a throwaway one is made in /tmp/build).
RUN DEBUG=1 DDS_VAR_DIR=/tmp/build STATIC_ROOT=/app/staticfiles \
    /opt/venv/bin/python manage.py collectstatic --no-input -v0 \
    && rm -rf /tmp/build

# --- runtime: slim, non-root, no build tools ------------------------------------------
FROM python:3.11-slim AS runtime
ARG VERSION=0+unknown
LABEL org.opencontainers.image.title="dds" \
      org.opencontainers.image.description="Data Delivery System" \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source="https://github.com/dds-org/dds"
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DDS_VAR_DIR=/var/lib/dds STATIC_ROOT=/app/staticfiles
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dds \
    && mkdir -p /var/lib/dds && chown 10001:10001 /var/lib/dds
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["/app/docker/entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
