# DDS image: one image, the role chosen by the entrypoint's first argument.
FROM python:3.11-slim AS base
ARG VERSION=0+unknown
LABEL org.opencontainers.image.version=$VERSION
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DDS_VAR_DIR=/var/lib/dds STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --system --uid 10001 --home /app dds \
    && mkdir -p /var/lib/dds /app/staticfiles && chown -R dds /var/lib/dds /app/staticfiles
USER 10001
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
