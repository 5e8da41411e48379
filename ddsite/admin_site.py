"""The admin site: only for staff with a live, second-factor portal session.

Deny by default: the site serves only model admins marked ``dds_scoped`` (the role- and
unit-scoped base in accounts.admin_base). A third-party app's own admin (Django's Group,
django-otp's devices, …) is never registered, so it cannot show a secret or bypass the
scoping. Password change and logout go through the portal's views, which re-wrap keys and
end key sessions.
"""

import logging

from django.contrib.admin import AdminSite
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.portal import portal_session_live

log = logging.getLogger(__name__)


class DDSAdminSite(AdminSite):
    site_header = "DDS administration"
    site_title = "DDS admin"
    index_title = "Data Delivery System"

    def register(self, model_or_iterable, admin_class=None, **options):
        if not getattr(admin_class, "dds_scoped", False):
            log.debug("admin: not serving %s (no scoped model admin)", model_or_iterable)
            return
        super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request) -> bool:
        # Same check as the portal: ending a session anywhere (logout elsewhere, password
        # change, deactivation, lifetime) also ends admin access at once.
        return super().has_permission(request) and portal_session_live(request)

    def password_change(self, request, extra_context=None):
        # Django's own form would change the hash without re-wrapping the user's keys.
        return redirect("accounts:password-change")

    def password_change_done(self, request, extra_context=None):
        return redirect("accounts:account")

    def logout(self, request, extra_context=None):
        # 307 keeps the POST (and its CSRF token) for the portal's logout, which ends
        # every session of the user, not only this browser's.
        response = HttpResponse(status=307)
        response["Location"] = reverse("accounts:logout")
        return response
