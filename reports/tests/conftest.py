"""A known set of file-version lifetimes in November 2026 (30 days: 720 hours) and the
GB-months they make (reports.services.usage: 10^9 bytes for a whole month = 1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from accounts.tests.factories import UnitFactory
from projects.tests.factories import ProjectFactory
from transfers.models import FileVersion

TZ = ZoneInfo("Europe/Stockholm")
GB = 10**9


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


def version(project, size, start, end=None, n=[0]):  # noqa: B006 - a counter
    n[0] += 1
    return FileVersion.objects.create(project=project, object_key=f"k{n[0]}",
                                      size_stored=size, uploaded_at=start, deleted_at=end)


@pytest.fixture
def november(db, settings):
    """Unit "ngi" (1.5 per GB-month): p1 2 GB-months, p2 1; unit "nbis" (no price):
    0.5. Returns a namespace with the units and projects."""
    settings.TIME_ZONE = "Europe/Stockholm"
    settings.DDS_CURRENCY = "SEK"
    ngi = UnitFactory(name="NGI", internal_ref="ngi", price_per_gb_month=Decimal("1.5"),
                      billing_email="billing@ngi.example.org")
    nbis = UnitFactory(name="NBIS", internal_ref="nbis", contact_email="c@nbis.example.org")
    p1 = ProjectFactory(unit=ngi, public_id="ngi-00001", title="Genomes")
    p2 = ProjectFactory(unit=ngi, public_id="ngi-00002", title="=HYPERLINK(\"x\")")
    p3 = ProjectFactory(unit=nbis, public_id="nbis-00001", title="Proteins")
    idle = ProjectFactory(unit=ngi, public_id="ngi-00003", title="Nothing stored")
    # p1: 1 GB the whole month, and 2 GB for its second half (360 h): 1 + 1.
    version(p1, GB, local(2026, 10, 15))
    version(p1, 2 * GB, local(2026, 11, 16))
    # p2: 3 GB for ten days (240 h) = 1; and something deleted before November: nothing.
    version(p2, 3 * GB, local(2026, 10, 20), local(2026, 11, 11))
    version(p2, 7 * GB, local(2026, 9, 1), local(2026, 10, 1))
    # p3: half a GB the whole month, from before it to after it.
    version(p3, GB // 2, local(2026, 10, 1), local(2026, 12, 20))

    class World:
        pass

    w = World()
    w.ngi, w.nbis, w.p1, w.p2, w.p3, w.idle = ngi, nbis, p1, p2, p3, idle
    w.now = local(2026, 12, 5, 9, 0)
    return w
