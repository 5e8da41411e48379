"""Small display helpers of the portal templates."""

from __future__ import annotations

import math
import shlex

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def expires_in(deadline) -> str:
    """'expires in 3 days' / 'expires today' / 'expired' for a project deadline."""
    if deadline is None:
        return ""
    seconds = (deadline - timezone.now()).total_seconds()
    if seconds <= 0:
        return "deadline passed"
    days = math.floor(seconds / 86400)
    if days == 0:
        return "expires today"
    return f"expires in {days} day{'s' if days != 1 else ''}"


@register.simple_tag
def dds_get_command(project_id: str, path: str = "") -> str:
    """The `dds data get` command that downloads the same thing (quoted for a shell)."""
    what = f"-s {shlex.quote(path)}" if path else "--get-all"
    return f"dds data get -p {shlex.quote(project_id)} {what}"
