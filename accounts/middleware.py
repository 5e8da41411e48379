"""A portal (or admin) login needs the browser's sealed key cookie, not only the session.

The Django session lives in the database; its key, read from a dump, would otherwise be
a working ``sessionid`` cookie. Every logged-in session also needs the ``dds_ks`` cookie:
the session key sealed under the server key for *this* session's AuthSession, which is
never stored server-side. A session without it, or with one minted for another session,
is treated as anonymous before any view runs: the request gets a fresh, empty session,
and the stored one is left alone (a copied session key must not even log its owner
out). accounts.portal.portal_session_live then checks that the AuthSession is live.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import NotAuthenticated

from accounts.sessions import PORTAL_KEY_COOKIE, PORTAL_SESSION_KEY, session_key_from_client


def key_cookie_valid(request) -> bool:
    sid = request.session.get(PORTAL_SESSION_KEY)
    carried = request.COOKIES.get(PORTAL_KEY_COOKIE)
    if not sid or not carried:
        return False
    try:
        session_key_from_client(session_public_id=str(sid), carried=carried)
    except NotAuthenticated:
        return False
    return True


class KeySessionMiddleware:
    """After AuthenticationMiddleware: no sealed key cookie, no login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_KEY) and not key_cookie_valid(request):
            request.session = import_module(settings.SESSION_ENGINE).SessionStore()
            request.user = AnonymousUser()
        return self.get_response(request)
