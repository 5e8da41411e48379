"""The portal's display helpers: deadlines in calendar days, sizes as `dds` shows them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cli.output import human
from portal.templatetags.portal import expires_in, size

NOON = dt.datetime(2026, 6, 10, 10, 0, tzinfo=dt.UTC)  # 12:00 in Stockholm (summer)


@pytest.fixture
def at_noon(settings, monkeypatch):
    """A fixed "now" at midday, so that no case crosses midnight or a DST change."""
    settings.TIME_ZONE = "Europe/Stockholm"
    monkeypatch.setattr(timezone, "now", lambda: NOON)
    return NOON


@pytest.mark.parametrize("delta, words", [
    (dt.timedelta(days=30), "expires in 30 days"),       # right after a 30-day release
    (dt.timedelta(days=2, minutes=1), "expires in 2 days"),
    (dt.timedelta(hours=21), "expires tomorrow"),        # 09:00 the next morning
    (dt.timedelta(seconds=1), "expires today"),
    (dt.timedelta(hours=11, minutes=59), "expires today"),
    (dt.timedelta(seconds=-1), "deadline passed"),
])
def test_a_deadline_is_counted_in_calendar_days(at_noon, delta, words):
    assert expires_in(at_noon + delta) == words


def test_no_deadline_shows_nothing():
    assert expires_in(None) == ""


@pytest.mark.parametrize("n", [0, 999, 1000, 488_900, 322_100, 5 * 10**9, 7 * 10**15])
def test_sizes_are_the_ones_dds_shows(n):
    assert size(n) == human(n)
    assert size(1000) == "1.0 KB" and size(488_900) == "488.9 KB"
