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


def api_exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    mapped = _mapped(exc)
    if mapped is not None:
        return Response({"detail": str(exc), "code": mapped[1]}, status=mapped[0])
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response({"detail": detail, "code": "invalid"},
                        status=status.HTTP_400_BAD_REQUEST)
    return None
