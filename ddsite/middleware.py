"""Site-wide middleware: security headers, maintenance mode, portal error pages.

Kept here (not in an app) because each applies to every URL of the site.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.exceptions import APIException

from accounts.authentication import SessionJWTAuthentication
from accounts.models import Maintenance, Role
from core.errors import domain_error_status

log = logging.getLogger(__name__)

#: Strict policy: nothing inline (no <script> blocks, no style= attributes), nothing from
#: another origin, no plugins, no framing, forms post only back to us. Inline SVG markup
#: (the TOTP QR code) is not a script or style, so it is allowed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
                           "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

MAINTENANCE_CACHE_KEY = "dds:maintenance"
# The flag is read on every request, so it is cached; saving the Maintenance row updates
# the cache at once (portal.apps), the timeout only bounds staleness across processes
# that do not share a cache.
MAINTENANCE_CACHE_SECONDS = 30
# Reachable during maintenance: the login pages (so that a Super Admin can log in and
# turn it off), the admin, static files, health probes and the API's auth endpoints.
MAINTENANCE_OPEN_PREFIXES = ("/accounts/login/", "/accounts/logout/", "/admin/", "/static/",
                             "/healthz", "/readyz", "/version", "/api/v1/auth/")


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def maintenance_message() -> str | None:
    """The maintenance message while maintenance mode is on, else None (cached)."""
    try:
        cached = cache.get(MAINTENANCE_CACHE_KEY)
    except Exception:  # noqa: BLE001 - a cache outage must not fail every request
        log.warning("cache unavailable: reading the maintenance flag from the database")
        cached = None
    if cached is None:
        row = Maintenance.objects.filter(pk=1, is_active=True).only("message").first()
        cached = {"on": row is not None, "message": row.message if row else ""}
        try:
            cache.set(MAINTENANCE_CACHE_KEY, cached, MAINTENANCE_CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - see above
            log.debug("cache unavailable: maintenance flag not cached")
    return (cached["message"] or "The system is under maintenance.") if cached["on"] else None


def _is_super_admin(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.role == Role.SUPER_ADMIN
    if request.path.startswith("/api/"):
        # API callers authenticate per view (DRF); resolve the bearer token here only to
        # let the operator through.
        try:
            found = SessionJWTAuthentication().authenticate(request)
        except Exception:  # noqa: BLE001 - any bad token is simply "not the operator"
            return False
        return bool(found) and found[0].role == Role.SUPER_ADMIN
    return False


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
        if message is None or _is_super_admin(request):
            return self.get_response(request)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": message, "code": "maintenance"}, status=503)
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
