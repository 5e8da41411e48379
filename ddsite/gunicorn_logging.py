"""gunicorn's logger for DDS: the access log shows the real client and no secret.

``--logger-class ddsite.gunicorn_logging.Logger`` (docker/entrypoint.sh). The client
address comes from ddsite.client_ip (X-Forwarded-For from trusted proxies only); the
request line, URL and referrer have query strings and token paths redacted.
"""

from __future__ import annotations

from gunicorn.glogging import Logger as GunicornLogger

from ddsite.log_redaction import RedactSecretsFilter, redact


class Logger(GunicornLogger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactSecretsFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        from django.apps import apps

        if apps.ready:  # the worker has loaded the app (and so the trusted proxies)
            from ddsite.client_ip import client_ip_from_meta

            atoms["h"] = client_ip_from_meta(environ) or "-"
        for key in ("r", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        atoms["q"] = ""
        atoms["U"] = redact(str(atoms.get("U") or ""))
        return atoms
