"""`dds maintenance status`: a state never switched has no change time ("never")."""

from __future__ import annotations

from cli.errors import Exit


def test_never_switched_on_says_never(logged_in, dds):
    logged_in.on("GET", "maintenance", {"active": False, "message": "", "changed_at": None})
    r = dds("maintenance", "status")
    assert r.exit_code == Exit.OK, r.stderr
    assert "never" in r.stdout


def test_switched_off_shows_when(logged_in, dds):
    logged_in.on("GET", "maintenance", {"active": False, "message": "",
                                        "changed_at": "2026-11-30T10:00:00Z"})
    r = dds("maintenance", "status")
    assert r.exit_code == Exit.OK, r.stderr
    assert "2026-11-30" in r.stdout and "never" not in r.stdout
