"""The portal's display helpers: deadlines in calendar days, sizes as `dds` shows them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cli.output import human
from portal.templatetags.portal import expires_in, size


@pytest.mark.parametrize("delta, words", [
    (dt.timedelta(days=30), "expires in 30 days"),       # right after a 30-day release
    (dt.timedelta(days=2, minutes=1), "expires in 2 days"),
    (dt.timedelta(seconds=1), "expires today"),
    (dt.timedelta(seconds=-1), "deadline passed"),
])
def test_a_deadline_is_counted_in_calendar_days(delta, words):
    assert expires_in(timezone.now() + delta) == words


def test_a_deadline_tomorrow_morning_is_tomorrow_not_today(settings):
    settings.TIME_ZONE = "Europe/Stockholm"
    now = timezone.now()
    local_midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0,
                                                     microsecond=0)
    tomorrow_morning = local_midnight + dt.timedelta(days=1, hours=9)
    assert expires_in(tomorrow_morning) == "expires tomorrow"
    assert expires_in(None) == ""


@pytest.mark.parametrize("n", [0, 999, 1000, 488_900, 322_100, 5 * 10**9, 7 * 10**15])
def test_sizes_are_the_ones_dds_shows(n):
    assert size(n) == human(n)
    assert size(1000) == "1.0 KB" and size(488_900) == "488.9 KB"
