"""--month for the reports' commands: YYYY-MM, as a CommandError when it is not."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError

from core.errors import BadInput
from reports.services.months import month_last, month_parse


def month_option(value: str | None) -> dt.date:
    if not value:
        return month_last()
    try:
        return month_parse(value, name="--month")
    except BadInput as exc:
        raise CommandError(str(exc)) from None
