"""Refuse malformed input before any view sees it: 400, never a 500.

- A control character (Unicode category Cc: NUL, ESC, DEL, ...) in the path or in a
  query parameter's name or value. PostgreSQL refuses NUL in text (a 500 deep in the ORM);
  the others have no business in a path, a username or a project id.
- A query parameter that is an integer outside the 64-bit range every id, offset and
  size of the database is in (``offset=9223372036854775808`` overflowed a bigint).
- A JSON body nested deeper than ``DDS_JSON_MAX_DEPTH`` (Python's parser recurses: 50 000
  levels crashed it) or larger than Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``.

API paths get the API's one error shape (``{"detail", "code"}``); other pages plain text.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpResponseBadRequest, JsonResponse

INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?\d+")
# Tokens that matter for nesting depth: strings (skipped whole) and brackets.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # fast path: cannot nest deeper than it has brackets
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _refuse(request, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "invalid"}, status=400)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self._check(request)
        return refusal if refusal is not None else self.get_response(request)

    def _check(self, request):
        if has_control_character(request.path):
            return _refuse(request, "The path contains a control character.")
        for name, values in request.GET.lists():
            if has_control_character(name) or any(has_control_character(v) for v in values):
                return _refuse(request, f"Query parameter {name!r} contains a control "
                                        "character.")
            for value in values:
                digits = value.strip().lstrip("+-")
                if _INTEGER.fullmatch(value.strip()) and (
                        len(digits) > 19 or abs(int(value)) > INT64_MAX):
                    return _refuse(request, f"Query parameter {name!r} is out of range.")
        # Media types are case-insensitive, and DRF's parser selection lowercases them.
        content_type = request.META.get("CONTENT_TYPE", "").lower()
        if request.method in ("POST", "PUT", "PATCH") and "json" in content_type:
            try:
                body = request.body
            except RequestDataTooBig:
                return _refuse(request, "The request body is too large.")
            limit = int(getattr(settings, "DDS_JSON_MAX_DEPTH", 32))
            if json_depth_exceeds(body, limit):
                return _refuse(request, f"The JSON body is nested deeper than {limit} levels.")
        return None


def names_check(**fields: str | None) -> None:
    """Refuse Unicode format characters (category Cf: bidi overrides U+202E, zero-width
    U+200B, BOM U+FEFF, …) and control characters in names shown to people: with them,
    ``report\\u202efdp.exe`` reads as "reportexe.pdf". Raises a field ValidationError."""
    errors = {}
    for field, value in fields.items():
        if not value:
            continue
        bad = sorted({f"U+{ord(ch):04X}" for ch in value
                      if unicodedata.category(ch) in ("Cf", "Cc")})
        if bad:
            errors[field] = [f"Invisible or control characters are not allowed "
                             f"({', '.join(bad)})."]
    if errors:
        raise ValidationError(errors)
