"""HTTP to the DDS API: bearer token, one transparent refresh, the server's own messages.

Every rule lives on the server; this module only carries requests and turns answers
into :class:`~cli.errors.Refused` with the server's ``detail`` so the user reads the real
reason; no answer at all is :class:`~cli.errors.Unreachable`.

The debug log (``--log-file``, ``-v``) gets one line per request: method, path, status,
duration and the server's request id (``X-Request-ID``), never a header or a body.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from cli import config
from cli.errors import LoginRequired, Refused, Unreachable, UsageError
from cli.output import secret
from cli.tls import tls_context
from cli.version import CLIENT_VERSION_HEADER, __version__

log = logging.getLogger(__name__)
API = "/api/v1/"
LOGIN_HINT = "Your DDS session has expired or ended: run `dds auth login`."


def _message(detail: Any) -> str:
    """Flatten DRF error bodies ({"detail": ...} or {"field": ["msg"]}) into one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return " ".join(_message(d) for d in detail)
    if isinstance(detail, dict):
        if "detail" in detail:
            return _message(detail["detail"])
        return "; ".join(f"{k}: {_message(v)}" if k != "non_field_errors" else _message(v)
                         for k, v in detail.items())
    return str(detail)


def _not_json(response: httpx.Response) -> str:
    """A short reason for an answer that is not the API's JSON (a debug page, a proxy's
    error page): its status, never its markup."""
    status = response.status_code
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status) or "error"
    where = "the server failed" if status >= 500 else "the server refused the request"
    return f"HTTP {status} {reason}: {where} without an API answer (see the server's log)."


def error_from(response: httpx.Response, options: Mapping[str, str] | None = None) -> Refused:
    """The server's error answer as an exception, with its own message and code.

    ``options``: the API fields of the request by the command-line option that gave them
    (``{"deadline_days": "--deadline"}``): field errors then name the option the user
    typed, not the API's field."""
    try:
        body = response.json()
    except ValueError:
        body = _not_json(response)
    code = body.get("code") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    if options and isinstance(errors, dict):
        message = _message({options.get(k, k): v for k, v in errors.items()})
    else:
        message = _message(body) or f"HTTP {response.status_code}"
    if response.status_code == 404 and message.lower() in ("not found", "not found."):
        message = f"{response.request.url.path}: not found on this server."
    return Refused(message, status=response.status_code, code=code,
                   body=body if isinstance(body, dict) else None)


def _log_answer(method: str, response: httpx.Response, started: float) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    url = response.request.url
    where = url.path.removeprefix(API) + (f"?{url.query.decode()}" if url.query else "")
    log.debug("%s %s -> %d %s in %.0f ms (request id %s)", method, where,
              response.status_code, response.reason_phrase,
              (time.monotonic() - started) * 1000, response.headers.get("X-Request-ID", "-"))
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):  # the error's message and code, never anything else
            log.debug("  the server said: %s (code %s)", _message(body), body.get("code"))


def server_url(explicit: str | None) -> str:
    """The server this command talks to: ``--url``, else ``DDS_URL``, else the one of the
    stored login. An address without ``https://`` (or ``http://``) and a host is a usage
    error here, before any request."""
    url: str | None
    if explicit:
        url, where = explicit, "--url"
    elif os.environ.get("DDS_URL"):
        url, where = os.environ["DDS_URL"], "DDS_URL"
    else:
        token = config.load_token()
        url, where = (token.get("url") if token else None), f"the login in {config.token_path()}"
    if not url:
        raise UsageError("No DDS server given: use --url or set DDS_URL.")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{where} {url!r} is not a server address: give it with https:// "
                         "(or http:// for a local test server), e.g. "
                         "https://dds.example.org or http://127.0.0.1:8000.")
    return url.strip().rstrip("/")


class Api:
    """A thread-safe API client bound to one server and the stored login."""

    def __init__(self, url: str, *, authenticated: bool = True, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self._lock = threading.Lock()
        self._token: dict[str, Any] | None = None
        if authenticated:
            token = config.load_token()
            if not token or not token.get("access"):
                # Shown after "Not logged in:" (cli.output.show_error): the reason only.
                raise LoginRequired(f"no login is kept in {config.token_path()}: run "
                                    "`dds auth login`.")
            if token.get("url", "").rstrip("/") != self.url:
                raise LoginRequired(f"Your login is for {token.get('url')}, not {self.url}: "
                                    "run `dds auth login` for this server.")
            self._token = token
            for key in ("access", "refresh"):
                secret(str(token.get(key) or ""))
        self.http = httpx.Client(base_url=self.url + API, timeout=timeout, verify=tls_context(),
                                 limits=httpx.Limits(max_connections=64,
                                                     max_keepalive_connections=32),
                                 headers={"User-Agent": f"dds-cli/{__version__}",
                                          CLIENT_VERSION_HEADER: __version__})

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- token handling

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token['access']}"} if self._token else {}

    def _refresh(self, used_access: str | None) -> None:
        """Swap the refresh token for new tokens, once for all threads that saw a 401."""
        with self._lock:
            if self._token is None:
                raise LoginRequired(LOGIN_HINT)
            if self._token["access"] != used_access:
                return  # another thread refreshed while we waited
            refresh = self._token.get("refresh")
            if not refresh:
                raise LoginRequired(LOGIN_HINT)
            log.debug("the access token was refused (401): refreshing it")
            started = time.monotonic()
            try:
                r = self.http.post("auth/refresh", json={"refresh": refresh})
            except httpx.HTTPError as exc:
                log.debug("POST auth/refresh: no answer: %r", exc)
                raise Unreachable(f"Cannot reach {self.url}: {exc}")
            _log_answer("POST", r, started)
            if r.status_code != 200:
                raise LoginRequired(LOGIN_HINT)
            self._token = {**self._token, **r.json()}
            for key in ("access", "refresh"):
                secret(str(self._token.get(key) or ""))
            config.save_token(self._token)

    # ---------------------------------------------------------------- requests

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204),
                headers: dict[str, str] | None = None,
                options: Mapping[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """``options``: see :func:`error_from` (API field → the option that set it)."""
        for attempt in range(2):
            used = self._token["access"] if self._token else None
            started = time.monotonic()
            try:
                r = self.http.request(method, path,
                                      headers={**self._auth_headers(), **(headers or {})},
                                      **kwargs)
            except httpx.TimeoutException as exc:
                log.debug("%s %s: no answer in time after %.0f ms: %r", method, path,
                          (time.monotonic() - started) * 1000, exc)
                raise Unreachable(f"{self.url} did not answer in time ({method} {path}).")
            except httpx.HTTPError as exc:
                log.debug("%s %s: no answer: %r", method, path, exc)
                raise Unreachable(f"Cannot reach {self.url}: {exc}")
            _log_answer(method, r, started)
            if r.status_code == 401 and self._token and attempt == 0:
                self._refresh(used)
                continue
            if r.status_code == 401 and self._token:
                raise LoginRequired(LOGIN_HINT)
            if r.status_code not in ok:
                raise error_from(r, options)
            return r
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).json()

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        r = self.request("POST", path, json=json if json is not None else {}, **kw)
        return r.json() if r.content else None

    def patch(self, path: str, json: Any, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw).json()

    def delete(self, path: str, **kw: Any) -> Any:
        r = self.request("DELETE", path, **kw)
        return r.json() if r.content else None
