"""gunicorn's logger for DDS: JSON lines, the real client, and no secret.

``--logger-class ddsite.gunicorn_logging.Logger`` (docker/entrypoint.sh). Both the error
log and the access log write one JSON object per line (core.logging_json). An access
line carries the client address from core.client_ip (X-Forwarded-For from trusted
proxies only), the method, the path (no query string; token paths redacted), status,
bytes, duration, and the request id, user id, project id and route the app left in the
WSGI environ (ddsite.observability). The request line, URL and referrer have query
strings and token paths redacted.
"""

from __future__ import annotations

import traceback

from django.apps import apps
from gunicorn.glogging import Logger as GunicornLogger

from core.client_ip import client_ip_from_meta
from core.log_redaction import RedactSecretsFilter, redact
from core.logging_json import ContextFilter, JsonFormatter

_ENVIRON = "dds."


class Logger(GunicornLogger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(ContextFilter())
                handler.addFilter(RedactSecretsFilter())
                handler.setFormatter(JsonFormatter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        if apps.ready:  # the worker has loaded the app (and so the trusted proxies)
            atoms["h"] = client_ip_from_meta(environ) or "-"
        for key in ("r", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        atoms["q"] = ""
        atoms["U"] = redact(str(atoms.get("U") or ""))
        return atoms

    def access(self, resp, req, environ, request_time):
        if not getattr(self, "access_log_enabled", True):
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            status = getattr(resp, "status_code", None) or atoms.get("s")
            sent = atoms.get("B")
            extra = {
                "client_ip": atoms.get("h"),
                "method": atoms.get("m"),
                "path": atoms.get("U"),
                "status": int(status) if str(status).isdigit() else status,
                "bytes": sent if isinstance(sent, int) else 0,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "user_agent": atoms.get("a"),
                "referrer": atoms.get("f"),
            }
            # Requests answered before the app's middleware (probes, /metrics) get one too.
            request_id = (environ.get(_ENVIRON + "request_id") or _header(resp, "x-request-id")
                          or _request_id(environ.get("HTTP_X_REQUEST_ID")))
            for name, value in (("request_id", request_id),
                                ("user_id", environ.get(_ENVIRON + "user_id")),
                                ("project_id", environ.get(_ENVIRON + "project_id")),
                                ("route", environ.get(_ENVIRON + "route"))):
                if value:
                    extra[name] = value
            self.access_log.info("%s %s", atoms.get("r"), status, extra=extra)
        except Exception:  # noqa: BLE001 - as gunicorn's own access(): log, never fail
            self.error(traceback.format_exc())


def _request_id(header: str | None) -> str:
    # The gunicorn master loads this class before Django is set up; observability needs it.
    from ddsite.observability import request_id_from  # noqa: PLC0415

    return request_id_from(header)


def _header(resp, name: str) -> str | None:
    for key, value in getattr(resp, "headers", None) or []:
        if key.lower() == name:
            return value
    return None
