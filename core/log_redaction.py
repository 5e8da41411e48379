"""Secrets never reach a log: query strings and token-bearing paths are redacted.

Links in emails carry secrets in their path or query (invite ``?t=``, reset
``/accounts/reset/<uid>/<token>/``, confirmation links, the local storage backend's signed
``/storage/…/<token>`` URLs, presigned S3 query strings). Web servers and Django log the
request line of every request and of every 4xx/5xx. One function rewrites such text, and
one logging filter applies it to every record (Django, runserver, gunicorn's access and
error logs, Celery), on its message and its arguments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

REDACTED = "[redacted]"

_TOKEN_PATHS = [
    # (prefix kept, number of path segments after it that are secret)
    (re.compile(r"(/accounts/reset/)[^/\s?\"']+/[^/\s?\"']+"), REDACTED + "/" + REDACTED),
    (re.compile(r"(/accounts/(?:totp/disable|delete)/)[^/\s?\"']+"), REDACTED),
    # every route of the local backend's signed URLs (parts, objects, puts, any later one)
    (re.compile(r"(/storage/[A-Za-z0-9_-]+/)[^/\s?\"']+"), REDACTED),
]
# A query string anywhere in a URL or request line: "?" up to white space or a quote.
_QUERY = re.compile(r"\?[^\s\"']*")


def _keep_prefix(replacement: str) -> Callable[[re.Match[str]], str]:
    def keep(match: re.Match[str]) -> str:
        return match.group(1) + replacement
    return keep


def redact(text: str) -> str:
    """The text with every query string and token path segment replaced."""
    if "?" not in text and "/accounts/" not in text and "/storage/" not in text:
        return text
    text = _QUERY.sub("?" + REDACTED, text)
    for pattern, replacement in _TOKEN_PATHS:
        text = pattern.sub(_keep_prefix(replacement), text)
    return text


def _redact_arg(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    return value


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message and arguments (never drops the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        # Django's request logging attaches the request; its repr holds the full path.
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = redact(repr(request))
        return True
