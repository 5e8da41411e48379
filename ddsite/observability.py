"""Request ids, log context and request metrics for every request; ``/metrics`` on the
metrics port only.

``ObservabilityMiddleware`` sits right after ``TrustedProxyMiddleware``:

* The request id is the ingress's ``X-Request-ID`` when it is a plausible id, otherwise a
  new one; it is bound to every log line of the request and returned as ``X-Request-ID``.
* Client address (``core.client_ip``, the one rule), user id and project id are bound
  to the log lines and left in the WSGI environ for gunicorn's access line
  (ddsite.gunicorn_logging), which also carries the duration.
* ``dds_http_requests_total`` / ``dds_http_request_duration_seconds`` by route (the URL
  pattern's name, never the raw path) and status; 429s of the login steps count as
  ``dds_logins_total{outcome="locked"|"throttled"}``.
* A request that reached the app on ``DDS_METRICS_PORT`` (gunicorn's second listener,
  ddsite/gunicorn_conf.py) is answered here, before host validation and the HTTPS
  redirect: ``GET /metrics`` or 404. The ingress only knows the app port, so the metrics
  are never reachable from outside the cluster.

Audited actions are also counted (``connect_signals``): logins and failed logins, upload
starts, completions and aborts, downloads. The audit log already records each of them
once, after its transaction commits, in whichever app does the work.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.signals import post_save
from django.http import HttpResponse, HttpResponseNotFound
from prometheus_client import CONTENT_TYPE_LATEST

from core import logging_json, metrics
from core.client_ip import client_ip
from ddsite import metrics_export
from transfers.models import File
from transfers.services.quota import quota_check_after_upload

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
LOGIN_ROUTES = {"auth-login", "auth-2fa", "accounts:login", "accounts:login-code"}
ENVIRON_PREFIX = "dds."


def request_id_from(header: str | None) -> str:
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def _user_id(request) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.pk)
    return None


class ObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        port = getattr(settings, "DDS_METRICS_PORT", 0)
        self.metrics_port = str(port) if port else None
        connect_signals()

    def __call__(self, request):
        if self.metrics_port and request.META.get("SERVER_PORT") == self.metrics_port:
            return self._metrics(request)
        start = time.monotonic()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        ip = client_ip(request)
        logging_json.clear()
        logging_json.bind(request_id=request_id, client_ip=ip)
        request.META[ENVIRON_PREFIX + "request_id"] = request_id
        request.META[ENVIRON_PREFIX + "client_ip"] = ip
        try:
            response = self.get_response(request)
            self._finish(request, response, time.monotonic() - start)
            response["X-Request-ID"] = request_id
            return response
        finally:
            logging_json.clear()

    def process_view(self, request, view_func, view_args, view_kwargs):
        project = view_kwargs.get("project_id")
        if project:
            request.META[ENVIRON_PREFIX + "project_id"] = str(project)
            logging_json.bind(project_id=project)
        user_id = _user_id(request)
        if user_id:
            logging_json.bind(user_id=user_id)
        return None

    def _finish(self, request, response, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "<unmatched>"
        user_id = _user_id(request)  # DRF authenticates in the view: known only now
        meta = request.META
        meta[ENVIRON_PREFIX + "route"] = route
        if user_id:
            meta[ENVIRON_PREFIX + "user_id"] = user_id
            logging_json.bind(user_id=user_id)
        metrics.http_request(method=request.method, route=route,
                             status=response.status_code, seconds=seconds)
        if route in LOGIN_ROUTES and response.status_code == 429:
            data = getattr(response, "data", None)
            code = data.get("code") if isinstance(data, dict) else None
            metrics.login(outcome="locked" if code == "locked" else "throttled")

    def _metrics(self, request):
        if request.path != "/metrics" or request.method not in ("GET", "HEAD"):
            return HttpResponseNotFound("not found\n", content_type="text/plain")
        return HttpResponse(metrics_export.render(), content_type=CONTENT_TYPE_LATEST)


# ----------------------------------------------------------------------- audit → metrics
_connected = False


def _on_audit(event) -> None:
    action, details = event.action, event.details or {}
    if action == "auth.login":
        metrics.login(outcome="ok")
    elif action == "auth.failure":
        metrics.login(outcome="failed")
    elif action == "auth.lock":
        metrics.login(outcome="locked")
    elif action == "upload.start":
        metrics.upload_started()
    elif action == "file.upload":
        # One event per file, or per batch of single-PUT files (``files`` of them).
        metrics.transfer(direction="upload", files=int(details.get("files") or 1),
                         nbytes=int(details.get("size_stored") or 0))
        if event.project_public_id:
            quota_check_after_upload(public_id=event.project_public_id,
                                     added=int(details.get("size_stored") or 0))
    elif action == "upload.abort":
        reason = "invalid" if details.get("reason") else (
            "aborted" if event.actor_username else "stale")
        metrics.transfer_failed(direction="upload", reason=reason)
    elif action == "file.download":
        metrics.transfer(direction="download", files=int(details.get("count") or 0),
                         nbytes=_download_bytes(event, details))


def _download_bytes(event, details) -> int:
    if "bytes" in details:
        return int(details["bytes"])
    paths = details.get("paths") or []
    return (File.objects.filter(project__public_id=event.project_public_id, path__in=paths)
            .aggregate(n=Sum("size_stored"))["n"] or 0)


def _audit_saved(sender, instance, created, **kwargs) -> None:
    if not created:
        return

    def count():
        try:
            _on_audit(instance)
        except Exception:
            logger.exception("metrics: counting audit event %s failed", instance.action)

    transaction.on_commit(count, robust=True)


def connect_signals() -> None:
    """Count audited actions (idempotent; web middleware and Celery workers call it)."""
    global _connected
    if _connected:
        return
    post_save.connect(_audit_saved, sender=apps.get_model("audit", "AuditEvent"),
                      dispatch_uid="dds-metrics-audit")
    # Tasks run eagerly in this process when there is no broker: count them too.
    import ddsite.celery_observe  # noqa: F401, PLC0415 - connects the Celery signals on first use
    _connected = True
