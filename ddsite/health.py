"""Liveness and readiness probes (no authentication, no session, no database writes).

The kubelet probes the pod's IP (``Host: 10.x.y.z:8000``), which ALLOWED_HOSTS rightly
rejects; so :class:`ProbeMiddleware`, first in MIDDLEWARE, answers the two probe paths
before host validation, HTTPS redirects, sessions or maintenance mode, and only them.

- ``/healthz``: the process serves requests (liveness). Touches nothing else, so a
  database outage does not restart healthy pods.
- ``/readyz``: the pod can serve, i.e. its database answers (readiness). The broker is
  not needed to serve pages or the API, so its state does not take pods out of the
  Service; ``/readyz?full`` reports it (and the cache) alongside.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

from core.client_ip import is_trusted_peer
from ddsite.celery import app

logger = logging.getLogger(__name__)

PROBE_PATHS = ("/healthz", "/readyz")


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


def healthz(request):
    return _no_store(JsonResponse({"status": "ok"}))


def _database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readiness: database unreachable")
        return "unavailable"


def _broker_check() -> str:
    if not settings.CELERY_BROKER_URL:
        return "not configured"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:  # noqa: BLE001 - reported, never raised
        logger.warning("readiness: broker unreachable")
        return "unavailable"


def _cache_check() -> str:
    try:
        cache.set("dds:readyz", "1", 5)
        return "ok" if cache.get("dds:readyz") == "1" else "unavailable"
    except Exception:  # noqa: BLE001 - reported, never raised
        logger.warning("readiness: cache unreachable")
        return "unavailable"


def readyz(request):
    checks = {"database": _database_check()}
    # The full report (it opens a broker connection) is for whoever reaches the pod
    # directly — the kubelet, an operator's port-forward — not for the internet through
    # the ingress, which is a trusted proxy.
    if "full" in request.GET and not is_trusted_peer(request.META):
        checks["broker"] = _broker_check()
        checks["cache"] = _cache_check()
    ready = checks["database"] == "ok"
    return _no_store(JsonResponse({"status": "ok" if ready else "unavailable",
                                   "checks": checks}, status=200 if ready else 503))


_VIEWS = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers GET/HEAD on the probe paths before anything can refuse them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = _VIEWS.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
