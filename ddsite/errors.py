"""Domain errors → clear HTTP answers, for every API view.

Services raise plain exceptions that say what is wrong; this handler turns them into 4xx
JSON (``{"detail": ..., "code": ...}``) so no rule violation ever surfaces as a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DDSError(Exception):
    """Base of the domain errors that map to one HTTP status."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"


def _mapped(exc: Exception) -> tuple[int, str] | None:
    from keys.services import KeyAccessError

    if isinstance(exc, DDSError):
        return exc.status_code, exc.code
    if isinstance(exc, KeyAccessError):
        return status.HTTP_403_FORBIDDEN, "key_access"
    return None


def domain_error_status(exc: Exception) -> int | None:
    """The HTTP status of a domain error (for the API handler and the portal), or None."""
    mapped = _mapped(exc)
    return mapped[0] if mapped else None


def _summary(errors) -> str:
    """One readable line from DRF/Django error details (lists, field dicts)."""
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {_summary(value)}" if field != "non_field_errors"
                         else _summary(value) for field, value in errors.items())
    if isinstance(errors, (list, tuple)):
        return " ".join(_summary(item) for item in errors)
    return str(errors)


def _code(exc, default: str = "invalid") -> str:
    codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", None) or default


def error_body(detail, code: str, errors=None) -> dict:
    """The API's one error shape (docs/api-errors.md): ``detail`` is always a sentence,
    ``code`` a stable token; field errors, when there are any, under ``errors``."""
    body = {"detail": detail if isinstance(detail, str) else _summary(detail), "code": code}
    if errors:
        body["errors"] = errors
    return body


def api_exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None:
        data = response.data
        if isinstance(data, dict) and set(data) <= {"detail", "code"} and "detail" in data:
            response.data = error_body(data["detail"], str(data.get("code") or _code(exc)))
        else:  # field errors ({"field": [...]}) or a list of messages
            response.data = error_body(data, "invalid",
                                       errors=data if isinstance(data, dict) else None)
        return response
    mapped = _mapped(exc)
    if mapped is not None:
        response = Response(error_body(str(exc), mapped[1]), status=mapped[0])
        if getattr(exc, "wait", None):  # e.g. keys.kdf_limit.KdfBusy (503)
            response["Retry-After"] = str(int(exc.wait))
        return response
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else None
        return Response(error_body(errors or exc.messages, "invalid", errors=errors),
                        status=status.HTTP_400_BAD_REQUEST)
    return None
