"""Template context shared by every portal page."""

from __future__ import annotations

from accounts.models import MOTD


def motd(request) -> dict:
    # Lazy: evaluated only by templates that show the banner (one query per page).
    return {"motds": lambda: list(MOTD.objects.filter(is_active=True)
                                  .order_by("-created_at").values_list("message", flat=True)[:3])}
