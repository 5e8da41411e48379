"""Template context shared by every portal page."""

from __future__ import annotations

from accounts.selectors import is_operator
from accounts.services.announcements import maintenance_message, motd_list

#: Messages in the banner at the top of every page (the newest first).
BANNER_MOTDS = 3


def motd(request) -> dict:
    # Lazy: evaluated only by templates that show the banner (one query per page).
    # ``maintenance_notice``: while maintenance mode is on, the Super Admin (the only one
    # who still gets pages) is reminded that everyone else is being turned away.
    return {
        "motds": lambda: list(motd_list(active_only=True)
                              .values_list("message", flat=True)[:BANNER_MOTDS]),
        "maintenance_notice": lambda: (maintenance_message()
                                       if is_operator(getattr(request, "user", None))
                                       else None),
    }
