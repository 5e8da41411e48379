#!/usr/bin/env bash
# The one entrypoint of the DDS image (CI's production-shape test runs this very file).
#   web          serve with gunicorn (static files are collected at image build; outside
#                the image they are collected here when STATIC_ROOT is empty)
#   worker       Celery worker (touches a heartbeat file for its liveness probe)
#   migrate      apply migrations, one run at a time (the release's migration hook Job)
#   manage …     any manage.py command (the Kubernetes CronJobs use this)
#   beat         Celery beat: only without Kubernetes, never beside the CronJobs
#   probe-worker exit 0 while the worker's heartbeat is fresh (liveness probe)
#   healthcheck  the image's HEALTHCHECK: the probe of the role this container runs
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
role="${1:-web}"
shift || true
heartbeat="${DDS_WORKER_HEARTBEAT_FILE:-/tmp/dds-worker-heartbeat}"
role_file="${TMPDIR:-/tmp}/dds-role"

remember_role() { echo "$1" > "$role_file" 2>/dev/null || true; }

case "$role" in
  web)
    remember_role web
    if [ "${DDS_MIGRATE:-0}" = "1" ]; then
      "$PYTHON" manage.py migrate_locked --no-input
    fi
    static_root="${STATIC_ROOT:-staticfiles}"
    if [ ! -d "$static_root" ] || [ -z "$(ls -A "$static_root" 2>/dev/null)" ]; then
      "$PYTHON" manage.py collectstatic --no-input -v0
    fi
    exec "$PYTHON" -m gunicorn ddsite.wsgi:application \
      --bind "${DDS_BIND:-0.0.0.0:8000}" \
      --workers "${GUNICORN_WORKERS:-3}" --threads "${GUNICORN_THREADS:-4}" \
      --timeout "${GUNICORN_TIMEOUT:-120}" --access-logfile - \
      --logger-class ddsite.gunicorn_logging.Logger \
      --config python:ddsite.gunicorn_conf \
      --no-control-socket \
      --forwarded-allow-ips "${DDS_TRUSTED_PROXIES:-127.0.0.1,::1}"
    ;;
  worker)
    remember_role worker
    export DDS_WORKER_HEARTBEAT_FILE="$heartbeat"
    exec "$PYTHON" -m celery -A ddsite worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate_locked --no-input
    ;;
  beat)
    exec "$PYTHON" -m celery -A ddsite beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  probe-worker)
    # Fresh within two minutes (the worker touches it every DDS_WORKER_HEARTBEAT_SECONDS).
    [ -n "$(find "$heartbeat" -mmin -2 2>/dev/null)" ]
    ;;
  healthcheck)
    case "$(cat "$role_file" 2>/dev/null || echo none)" in
      web) bind="${DDS_BIND:-0.0.0.0:8000}"
           exec "$PYTHON" -c "import urllib.request; urllib.request.urlopen(\
'http://127.0.0.1:${bind##*:}/healthz', timeout=4)" ;;
      worker) exec "$0" probe-worker ;;
      *) exit 0 ;;
    esac
    ;;
  *)
    echo "usage: entrypoint.sh web|worker|migrate|manage <command>|beat|probe-worker|healthcheck" >&2
    exit 2
    ;;
esac
