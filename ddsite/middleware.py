"""Site-wide middleware: security headers, maintenance mode, portal error pages.

Kept here (not in an app) because each applies to every URL of the site.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.exceptions import APIException, AuthenticationFailed

from accounts.authentication import SessionJWTAuthentication
from accounts.selectors import is_operator
from accounts.services.announcements import (
    MAINTENANCE_CACHE_KEY,
    MAINTENANCE_CACHE_SECONDS,
    maintenance_message,
)
from core.errors import domain_error_status
from portal.middleware import PUBLIC_PREFIXES

log = logging.getLogger(__name__)

#: Strict policy: nothing inline (no <script> blocks, no style= attributes), nothing from
#: another origin, no plugins, no framing, forms post only back to us. Inline SVG markup
#: (the TOTP QR code) is not a script or style, so it is allowed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
                           "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# The flag is read on every request, so it is cached (accounts.services.announcements):
# switching it (API, CLI, admin) writes the new state to the cache once committed, and
# saving the row otherwise drops the cached copy (ddsite.apps); the timeout only bounds
# staleness across processes that do not share a cache.
__all__ = ["MAINTENANCE_CACHE_KEY", "MAINTENANCE_CACHE_SECONDS", "maintenance_message"]
# Reachable during maintenance: the login pages (so that a Super Admin can log in and
# turn it off; the admin's login only redirects there), static files, health probes, the
# API's auth endpoints and the public pages (troubleshooting and privacy help most while
# the rest is closed). The rest of the admin is the Super Admin's, as every other page.
MAINTENANCE_OPEN_PREFIXES = ("/accounts/login/", "/accounts/logout/", "/admin/login/",
                             "/static/",
                             "/healthz", "/readyz", "/version", "/api/v1/auth/",
                             *PUBLIC_PREFIXES)
#: Read-only API paths anyone signed in may reach during maintenance (the views still
#: authenticate): ``dds maintenance status`` tells a researcher what is going on.
MAINTENANCE_OPEN_READS = frozenset({"/api/v1/maintenance"})


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class _BadToken(Exception):
    def __init__(self, response: JsonResponse) -> None:
        super().__init__("bad token")
        self.response = response


def _is_super_admin(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return is_operator(user)
    if request.path.startswith("/api/"):
        # API callers authenticate per view (DRF); resolve the bearer token here only to
        # let the operator through.
        try:
            found = SessionJWTAuthentication().authenticate(request)
        except AuthenticationFailed as exc:
            # An expired or ended token: answer 401 as the view would, so that a client
            # refreshes its token (the auth endpoints are open) and, if it is the
            # operator's, gets through on the next try rather than being locked out by
            # a 503 until maintenance ends.
            raise _BadToken(_unauthenticated(exc)) from exc
        except Exception:  # noqa: BLE001 - any other bad token is simply "not the operator"
            return False
        return bool(found) and is_operator(found[0])
    return False


def _unauthenticated(exc: AuthenticationFailed) -> JsonResponse:
    detail = exc.detail
    if isinstance(detail, dict):
        message, code = str(detail.get("detail", "")), str(detail.get("code", ""))
    else:
        message, code = str(detail), str(getattr(detail, "code", "") or "")
    response = JsonResponse({"detail": message or "Authentication failed.",
                             "code": code or "authentication_failed"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _api_detail(message: str) -> str:
    """The refusal as a client shows it: the operator's words, saying that this is
    maintenance when they do not (the portal page has its own heading)."""
    return message if "maintenance" in message.lower() else f"Under maintenance: {message}"


class MaintenanceMiddleware:
    """While maintenance mode is on, only the Super Admin uses the system (503 for others)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Open paths first: health probes must not touch the database (a liveness probe
        # that fails with the database would restart healthy pods).
        if request.path.startswith(MAINTENANCE_OPEN_PREFIXES):
            return self.get_response(request)
        message = maintenance_message()
        if message is None:
            return self.get_response(request)
        if request.method in ("GET", "HEAD") and request.path in MAINTENANCE_OPEN_READS:
            return self.get_response(request)
        try:
            if _is_super_admin(request):
                return self.get_response(request)
        except _BadToken as bad:
            return bad.response
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": _api_detail(message), "code": "maintenance"},
                                    status=503)
        else:
            response = render(request, "maintenance.html", {"message": message}, status=503)
        response["Retry-After"] = "300"
        return response


class PortalErrorMiddleware:
    """Domain errors raised in portal pages become clear 4xx pages, never a 500.

    API views map the same errors to JSON themselves (core.errors); this covers the
    server-rendered pages, whose views call the same services.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith("/api/"):
            return None
        status = domain_error_status(exception)  # the API's mapping, one place
        if status is None and isinstance(exception, APIException):
            status = exception.status_code  # NotAuthenticated from request_kek
        if status is None:
            return None
        message = str(getattr(exception, "detail", None) or exception)
        response = render(request, "error.html", {"status": status, "message": message},
                          status=status)
        wait = getattr(exception, "wait", None)
        if wait:
            response["Retry-After"] = str(int(wait))
        return response
