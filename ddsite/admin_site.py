"""The admin site: only for staff with a live, second-factor portal session."""

from django.contrib.admin import AdminSite


class DDSAdminSite(AdminSite):
    site_header = "DDS administration"
    site_title = "DDS admin"
    index_title = "Data Delivery System"

    def has_permission(self, request) -> bool:
        # Same check as the portal: ending a session anywhere (logout elsewhere, password
        # change, deactivation, lifetime) also ends admin access at once.
        from accounts.portal import portal_session_live

        return super().has_permission(request) and portal_session_live(request)
