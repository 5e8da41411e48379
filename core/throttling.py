"""Request throttles (DRF's cache-backed rate throttling; Redis in production).

Scopes and rates are one setting, ``DDS_THROTTLE_RATES``; who counts is either the client
address (core.client_ip: the real client behind the ingress) or the signed-in user. API
views list ``throttle(...)`` classes; portal views and services call :func:`throttle_check`
or :func:`throttle_allow`, so both front doors share one budget per scope.

These bound the *rate* of requests (mail floods, enumeration, KDF cost); the lockout in
accounts.services bounds *failed* passwords and codes.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

from core.client_ip import client_ip

log = logging.getLogger(__name__)


class ScopedThrottle(SimpleRateThrottle):
    scope = "default"
    #: "ip" (the client address) or "user" (the authenticated user; else the address).
    by = "ip"
    # Set by SimpleRateThrottle.__init__ from the rate (the stubs do not declare them).
    num_requests: int
    duration: int

    def get_rate(self) -> str:
        return settings.DDS_THROTTLE_RATES[self.scope]

    def ident(self, request) -> str:
        user = getattr(request, "user", None)
        if self.by == "user" and user is not None and getattr(user, "is_authenticated", False):
            return f"user:{user.pk}"
        return f"ip:{client_ip(request) or '-'}"

    def get_cache_key(self, request, view):
        return _cache_key(self.scope, self.ident(request))

    def allow_request(self, request, view):
        # A cache outage opens the rate limit rather than failing every login: the lockout
        # of failed attempts lives in the database and still holds.
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - any cache failure
            log.warning("throttle %s: cache unavailable, not limiting", self.scope)
            self.history = []
            return True

    def allow_ident(self, ident: str) -> bool:
        """allow_request for an identity that is not the request (e.g. an email address)."""
        self.key = _cache_key(self.scope, ident)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()


def _cache_key(scope: str, ident: str) -> str:
    # Hashed: an identity may be an email address, which has no place in a cache dump.
    return "dds:throttle:" + scope + ":" + hashlib.sha256(ident.encode()).hexdigest()[:32]


_classes: dict[tuple[str, str], type[ScopedThrottle]] = {}


def throttle(scope: str, *, by: str = "ip") -> type[ScopedThrottle]:
    """The throttle class of a scope, for a DRF view's ``throttle_classes``."""
    if scope not in settings.DDS_THROTTLE_RATES:
        raise KeyError(f"no rate for throttle scope {scope!r} in DDS_THROTTLE_RATES")
    key = (scope, by)
    if key not in _classes:
        _classes[key] = type(f"Throttle_{scope}_{by}", (ScopedThrottle,),
                             {"scope": scope, "by": by})
    return _classes[key]


def throttle_check(request, scope: str, *, by: str = "ip") -> None:
    """For views outside DRF: raise Throttled (429 with Retry-After) over the rate."""
    limiter = throttle(scope, by=by)()
    if not limiter.allow_request(request, None):
        raise Throttled(wait=limiter.wait())


def throttle_allow(scope: str, ident: str) -> bool:
    """Count one event for ``ident`` in ``scope``; False when over the rate."""
    try:
        return throttle(scope)().allow_ident(ident)
    except Exception:  # noqa: BLE001 - as in ScopedThrottle.allow_request
        log.warning("throttle %s: cache unavailable, not limiting", scope)
        return True
