"""Support tools with the real `dds`: find a user, list and cancel pending invites, save a
unit's addresses, reset a second factor (a Super Admin; refused to a Unit Admin), and ask
to delete one's own account."""

from __future__ import annotations

import json
import stat
import time

import pytest
from django.core import mail

from accounts.models import Invite, Role, TOTPDevice, User
from accounts.services import totp_setup_start
from keys.tests.helpers import keyed_user
from projects.services import project_create
from tests.e2e.conftest import DDS

pytestmark = pytest.mark.django_db(transaction=True)


def _mail_to(address: str, marker: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in mail.outbox:
            if address in message.to and marker in message.subject + message.body:
                return message.body
        time.sleep(0.05)
    raise AssertionError(f"no email with {marker!r} to {address}")


def test_support_tools_with_the_real_dds(e2e):
    staff, researcher = e2e.staff, e2e.researcher
    operator, operator_pw, _ = keyed_user(Role.SUPER_ADMIN)
    operator_dds = DDS(e2e.url, e2e.tmp / "operator-config", operator, operator_pw)
    project_create(unit=e2e.unit, by=staff.user, title="Support", force=True,
                   researchers=[researcher.user])
    staff.login()

    # Find: exact address in any case; nobody (or someone not visible) is exit status 1.
    r = staff("user", "find", researcher.user.email.upper(), "--json")
    assert r.code == 0, r.err
    [found] = json.loads(r.out)
    assert (found["username"], found["second_factor"]) == (researcher.user.username, "email")
    stranger, _, _ = keyed_user(Role.RESEARCHER)
    for term in ("nobody@example.org", stranger.email):
        r = staff("user", "find", term)
        assert r.code == 1 and "No user matches" in r.err and r.out == ""

    # Invite without an email, list it, cancel it.
    r = staff("user", "add", "newcomer@example.org", "-r", "Unit Personnel", "--no-mail",
              "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["kind"] == "invited"
    assert not [m for m in mail.outbox if "newcomer@example.org" in m.to]
    r = staff("user", "find", "Newcomer@example.org")
    assert r.code == 1 and "newcomer@example.org has a pending invite" in r.err
    r = staff("user", "ls", "--invites", "--json")
    assert r.code == 0, r.err
    [row] = [i for i in json.loads(r.out) if i["email"] == "newcomer@example.org"]
    assert (row["role"], row["unit"], row["invited_by"]) == (
        Role.UNIT_PERSONNEL, e2e.unit.name, staff.user.username)
    r = staff("user", "ls", "--invites")
    assert r.code == 0 and "newcomer@example.org" in r.out
    r = staff("user", "delete", "--self", "--invite", "newcomer@example.org", "--yes")
    assert r.code == 2 and "exactly one of" in r.err
    r = staff("user", "delete", "--invite", "newcomer@example.org")
    assert r.code == 2 and "--yes" in r.err  # no terminal to ask: refused
    assert Invite.objects.filter(email="newcomer@example.org").exists()
    r = staff("user", "delete", "--invite", "newcomer@example.org", "--yes")
    assert r.code == 0, r.err
    assert "Cancelled the invite of newcomer@example.org" in r.err
    assert not Invite.objects.filter(email="newcomer@example.org").exists()
    r = staff("user", "delete", "--invite", "newcomer@example.org", "--yes", "--json")
    assert r.code == 5 and json.loads(r.out)["error"]["code"] == "not_found"

    # The unit's addresses, one a line (its staff: here its two admins).
    target = e2e.tmp / "emails.txt"
    r = staff("user", "ls", "--unit", e2e.unit.name, "--save-emails", str(target))
    assert r.code == 0, r.err
    expected = sorted(User.objects.filter(unit=e2e.unit).values_list("email", flat=True))
    assert target.read_text().splitlines() == expected and len(expected) == 2
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    r = staff("user", "ls", "--save-emails", str(target))
    assert r.code == 2 and "--unit" in r.err

    # Asking to delete one's own account sends the confirmation link.
    researcher.login()
    r = researcher("user", "delete", "--self", "--yes", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["requested"] is True
    assert "/accounts/delete/" in _mail_to(researcher.user.email, "/accounts/delete/")
    assert User.objects.filter(pk=researcher.user.pk).exists()  # not before the link

    # Second factor: refused to a Unit Admin (exit 5), done by a Super Admin.
    device = totp_setup_start(user=researcher.user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    r = staff("user", "reset-second-factor", researcher.user.username, "--yes")
    assert r.code == 5 and "Super Admin" in r.err
    assert TOTPDevice.objects.filter(user=researcher.user, confirmed=True).exists()
    operator_dds.login()
    r = operator_dds("user", "reset-second-factor", researcher.user.username, "--yes",
                     "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["authenticator_removed"] is True
    assert not TOTPDevice.objects.filter(user=researcher.user).exists()
    _mail_to(researcher.user.email, "second factor was reset")
    # The researcher's session was ended.
    r = researcher("user", "info")
    assert r.code == 3, r.err
