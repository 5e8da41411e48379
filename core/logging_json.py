"""One JSON object per log line, from every process (Django, gunicorn, Celery, commands).

Every line has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; lines
written while a request or a task is handled also carry ``request_id``, ``user_id``,
``project_id`` and ``client_ip`` (bound here, by ``ddsite.observability`` and
``ddsite.celery_observe``); gunicorn's access lines add ``method``, ``path``,
``status``, ``bytes`` and ``duration_ms``.

Redaction happens twice: ``core.log_redaction.RedactSecretsFilter`` (on every handler)
rewrites the message and its arguments, and the formatter rewrites every string field it
writes (so an ``extra=`` field or a traceback cannot carry a query string or a token path),
and drops the value of any field whose *name* says it is a secret (password, token, code,
key, secret, cookie, authorization).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from core.log_redaction import REDACTED, redact

# Python warnings (deprecations from libraries) would be plain text on stderr: log them.
logging.captureWarnings(True)

#: Fields bound to the current request or task (contextvars: per thread and per task).
CONTEXT_FIELDS = ("request_id", "user_id", "project_id", "client_ip", "task_id", "task")
_context: dict[str, contextvars.ContextVar] = {
    name: contextvars.ContextVar(f"dds_log_{name}", default=None) for name in CONTEXT_FIELDS
}

# A field named like a secret never has its value logged ("status_code" is not one).
_SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|pw|token|secret|otp|code|key|kek|authorization|cookie|sessionid)s?"
    r"($|_)", re.IGNORECASE)
_NOT_SECRET = {"status_code", "exc_info", "key_rotation_id"}


def bind(**fields: Any) -> None:
    """Attach fields to every log line of the current request/task (None removes one)."""
    for name, value in fields.items():
        _context[name].set(None if value is None else str(value))


def clear() -> None:
    for var in _context.values():
        var.set(None)


def current() -> dict[str, str]:
    """The bound fields that are set."""
    return {name: var.get() for name, var in _context.items() if var.get() is not None}


class ContextFilter(logging.Filter):
    """Copies the bound request/task fields onto each record (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        # Django logs a 4xx/5xx after the middleware has returned, with the request
        # attached: its ids are in the environ (ddsite.observability). Run before "redact",
        # which replaces the request with its redacted repr.
        meta = getattr(getattr(record, "request", None), "META", None)
        if isinstance(meta, Mapping):
            for name in ("request_id", "user_id", "project_id", "client_ip"):
                found = meta.get("dds." + name)
                if found is not None and getattr(record, name, None) is None:
                    setattr(record, name, found)
        return True


def _clean(name: str, value: Any) -> Any:
    if name not in _NOT_SECRET and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(name, v) for v in value]
    return value


class JsonFormatter(_JsonFormatter):
    """python-json-logger with DDS's field names, the bound context and redaction."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("json_default", str)
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
            timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage() if not isinstance(record.msg, dict) else ""
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = value
        # Django attaches the request object; its repr is redacted by the filter, and
        # the path alone is what a reader needs.
        log_data.pop("request", None)
        log_data.pop("server_time", None)
        log_data.pop("color_message", None)

    def process_log_record(self, log_data):
        ordered = {key: log_data.pop(key) for key in ("time", "level", "logger", "message")
                   if key in log_data}
        ordered.update(log_data)
        return {name: _clean(name, value) for name, value in ordered.items()}


# --------------------------------------------------------------------------- tests, CI
def parse_json_lines(text: str) -> list[dict]:
    """Every line of a log as a dict; AssertionError names the first line that is not JSON.

    For tests (and the production-shape test): ``parse_json_lines(log_text)``.
    """
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {line[:300]!r}") from None
        if not isinstance(record, dict) or not {"time", "level", "logger", "message"} <= set(
                record):
            raise AssertionError(f"log line {number} lacks time/level/logger/message: "
                                 f"{line[:300]!r}")
        records.append(record)
    return records


def assert_no_secrets(text: str, secrets: Iterable[str]) -> None:
    """AssertionError if any secret (or a query string) appears in the log text."""
    for secret in secrets:
        if secret and secret in text:
            line = next(line for line in text.splitlines() if secret in line)
            raise AssertionError(f"a secret reached the log: {line[:300]!r}")
    for line in text.splitlines():
        if re.search(r"\?(?!\[redacted\])[^\s\"']", line):
            raise AssertionError(f"a query string reached the log: {line[:300]!r}")
