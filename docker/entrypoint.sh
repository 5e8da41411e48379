#!/usr/bin/env bash
# The one entrypoint of the DDS image (and of CI's smoke test, which runs this very file).
#   web       migrate (if DDS_MIGRATE=1), collect static files, serve with gunicorn
#   worker    Celery worker
#   beat      Celery beat (periodic jobs)
#   manage …  any manage.py command (the Kubernetes CronJobs use this)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
role="${1:-web}"
shift || true

case "$role" in
  web)
    if [ "${DDS_MIGRATE:-1}" = "1" ]; then
      "$PYTHON" manage.py migrate --no-input
    fi
    "$PYTHON" manage.py collectstatic --no-input -v0
    exec "$PYTHON" -m gunicorn ddsite.wsgi:application \
      --bind "${DDS_BIND:-0.0.0.0:8000}" \
      --workers "${GUNICORN_WORKERS:-3}" --threads "${GUNICORN_THREADS:-4}" \
      --timeout "${GUNICORN_TIMEOUT:-120}" --access-logfile - \
      --logger-class ddsite.gunicorn_logging.Logger \
      --forwarded-allow-ips "${DDS_TRUSTED_PROXIES:-127.0.0.1,::1}"
    ;;
  worker)
    exec "$PYTHON" -m celery -A ddsite worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}"
    ;;
  beat)
    exec "$PYTHON" -m celery -A ddsite beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    echo "usage: entrypoint.sh web|worker|beat|manage <command>" >&2
    exit 2
    ;;
esac
