"""The one error model: every domain error, and how the API answers it.

Services raise a :class:`DDSError` subclass that says what is wrong (``message``, shown to
the user), with a stable ``code``, the HTTP ``status_code`` the API answers with, optional
``details`` (numbers a client can act on, e.g. a quota's free bytes) and, for errors that
pass, ``retry_after`` seconds. :func:`api_exception_handler` is the only place that turns
them (and DRF's and Django's own errors) into responses; views never catch domain errors.
The portal shows the same message and status (``ddsite.middleware.PortalErrorMiddleware``
and the forms' ``form_error``). Each app declares its errors in ``<app>/errors.py``.

The body (docs/api-errors.md)::

    {"detail": "<sentence>", "code": "<token>", "errors": {<field>: [...]}?, **details}
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

#: Keys of the body that ``details`` may not overwrite.
_RESERVED = frozenset({"detail", "code", "errors"})


class DDSError(Exception):
    """Base of every domain error: a message for people, a code and status for programs."""

    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str = "", *, retry_after: int | None = None,
                 **details: Any) -> None:
        message = message or (self.__doc__ or "").strip().splitlines()[0]
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        clash = _RESERVED & details.keys()
        if clash:
            raise TypeError(f"details may not use the body's own keys: {sorted(clash)}")
        self.details: dict[str, Any] = details

    def body(self) -> dict[str, Any]:
        return {**error_body(self.message, self.code), **self.details}


# The kinds every app uses; an app's errors.py subclasses them for its own codes.
class BadInput(DDSError):
    """The request is not valid."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"


class NotAllowed(DDSError):
    """The caller's role, or the state of the object, does not allow this now."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "not_allowed"


class NotFound(DDSError):
    """No such object (or not one the caller may see)."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(DDSError):
    """The request conflicts with the current state."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class ProjectBusy(DDSError):
    """A long operation (key rotation, purge, status change) holds the project; retry later."""

    status_code = status.HTTP_423_LOCKED
    code = "project_busy"


class TooLarge(DDSError):
    """The request is larger than allowed."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


class Unavailable(DDSError):
    """A service this request needs is unavailable; nothing was changed, retry later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"


def domain_error_status(exc: BaseException) -> int | None:
    """The HTTP status of a domain error (for the API handler and the portal), or None."""
    return exc.status_code if isinstance(exc, DDSError) else None


def _summary(errors: Any) -> str:
    """One readable line from DRF/Django error details (lists, field dicts)."""
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {_summary(value)}" if field != "non_field_errors"
                         else _summary(value) for field, value in errors.items())
    if isinstance(errors, list | tuple):
        return " ".join(_summary(item) for item in errors)
    return str(errors)


def _code(exc: Exception, default: str = "invalid") -> str:
    get_codes = getattr(exc, "get_codes", None)
    codes = get_codes() if get_codes else None
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", None) or default


def error_body(detail: Any, code: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API's one error shape (docs/api-errors.md): ``detail`` is always a sentence,
    ``code`` a stable token; field errors, when there are any, under ``errors``."""
    body: dict[str, Any] = {"detail": detail if isinstance(detail, str) else _summary(detail),
                            "code": code}
    if errors:
        body["errors"] = errors
    return body


def domain_error_response(exc: DDSError) -> Response:
    response = Response(exc.body(), status=exc.status_code)
    if exc.retry_after:
        response["Retry-After"] = str(int(exc.retry_after))
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error of every API view gets the one body."""
    if isinstance(exc, DDSError):
        return domain_error_response(exc)
    # Django's own 404 and 403 (get_object_or_404, selectors raising Http404): DRF answers
    # them as its NotFound / PermissionDenied, and so does the code of the body.
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is not None:
        data = response.data
        if (isinstance(data, dict) and "detail" in data
                and (set(data) <= {"detail", "code"} or isinstance(data.get("code"), str))):
            # (simplejwt adds "messages", the token classes tried: not for the client)
            response.data = error_body(data["detail"], str(data.get("code") or _code(exc)))
        else:  # field errors ({"field": [...]}) or a list of messages
            response.data = error_body(data, "invalid",
                                       errors=data if isinstance(data, dict) else None)
        return response
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else None
        return Response(error_body(errors or exc.messages, "invalid", errors=errors),
                        status=status.HTTP_400_BAD_REQUEST)
    return None
