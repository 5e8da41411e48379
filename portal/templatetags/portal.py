"""Small display helpers of the portal templates."""

from __future__ import annotations

import shlex

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def expires_in(deadline) -> str:
    """'expires in 3 days' / 'expires tomorrow' / 'expires today' / 'deadline passed',
    counted in calendar days of the site's time zone: a deadline 30 days away is "in 30
    days" (not 29, as whole days left rounded down said), and one tomorrow morning is
    "tomorrow" (not "today" with 23 hours left)."""
    if deadline is None:
        return ""
    now = timezone.now()
    if deadline <= now:
        return "deadline passed"
    days = (timezone.localdate(deadline) - timezone.localdate(now)).days
    if days == 0:
        return "expires today"
    if days == 1:
        return "expires tomorrow"
    return f"expires in {days} days"


@register.filter
def size(n) -> str:
    """Bytes as `dds` shows them (decimal units: 1 KB = 1000 B), so that the portal and
    the command line give one file the same size. (`cli.output.human` is the client's
    copy: the client imports no server code.)"""
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # not reached


@register.simple_tag
def dds_get_command(project_id: str, path: str = "") -> str:
    """The `dds data get` command that downloads the same thing (quoted for a shell)."""
    what = f"-s {shlex.quote(path)}" if path else "--get-all"
    return f"dds data get -p {shlex.quote(project_id)} {what}"
