"""The user agreement gate of the portal and the admin.

A logged-in user who has not accepted the user agreement in force
(accounts.services.agreement) is sent to the acceptance page before anything else. The
API is not gated here: it refuses new tokens instead (accounts.api), so a client gets a
JSON 403 ``agreement_required``, not a redirect to an HTML page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseRedirect

from accounts.services.agreement import AGREEMENT_ACCEPT_PATH, agreement_required

#: The public pages (portal.urls): open to everyone, in any state.
PUBLIC_PREFIXES = ("/privacy/", "/troubleshooting/", "/technical/", "/terms/")
#: Never gated: the acceptance page itself, logging in and out (so a user can always
#: leave), the API (its own refusal), static files, the storage URLs, the probes.
UNGATED_PREFIXES = (AGREEMENT_ACCEPT_PATH, "/accounts/login/", "/accounts/logout/",
                    "/api/", "/static/", "/storage/", "/healthz", "/readyz", "/version",
                    *PUBLIC_PREFIXES)


class AgreementMiddleware:
    """Redirect a logged-in user with an outdated agreement to the acceptance page.

    The check compares ``User.agreement_version`` (already loaded with the user) with the
    setting: no query. Anonymous requests are never touched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (not request.path.startswith(UNGATED_PREFIXES)
                and agreement_required(request.user)):
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{AGREEMENT_ACCEPT_PATH}?{query}")
        return self.get_response(request)
