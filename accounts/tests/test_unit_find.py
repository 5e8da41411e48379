"""One rule for the unit a person types: name, internal ref (any case) or public id.

``unit_find`` is called by the API (users, invites, usage), `dds motd send --unit` and the
``usage_report`` / ``storage_reconcile`` commands; these tests check the rule and that
each of those entry points follows it.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Invite, Role
from accounts.selectors import unit_find, units_visible_to
from accounts.services.announcements import motd_add, motd_send
from accounts.tests.factories import UnitFactory, UserFactory
from accounts.tests.helpers import api_login, bearer, keyed_user
from core.errors import BadInput, NotFound
from reports.selectors import usage_units_for


@pytest.mark.django_db
def test_a_unit_is_found_by_name_ref_in_any_case_or_public_id(unit_a):
    for ident in ("Unit A", "unita", "UNITA", unit_a.public_id, f"  {unit_a.name} "):
        assert unit_find(ident) == unit_a, ident


@pytest.mark.django_db
@pytest.mark.parametrize("ident", ["", "   ", "unit a", "Unit", "nope", "x" * 500])
def test_no_match_is_a_404_that_says_what_to_give(unit_a, ident):
    with pytest.raises(NotFound) as caught:
        unit_find(ident)
    assert "name, internal ref or public id" in caught.value.message
    assert len(caught.value.message) < 150  # a long input is not echoed whole


@pytest.mark.django_db
def test_a_name_that_is_another_unit_s_ref_is_refused_not_guessed(unit_a):
    clash = UnitFactory(internal_ref="other", name="unita")  # its name is unit A's ref
    with pytest.raises(BadInput, match="more than one unit: give its public id"):
        unit_find("unita")
    assert unit_find(clash.public_id) == clash and unit_find(unit_a.public_id) == unit_a


@pytest.mark.django_db
def test_outside_the_actor_s_units_is_the_same_404(unit_a, unit_b, admin_a):
    mine = units_visible_to(admin_a)
    assert unit_find("unita", among=mine) == unit_a
    for ident in ("unitb", unit_b.public_id, "Unit B"):
        with pytest.raises(NotFound):
            unit_find(ident, among=mine)
    # the usage selector applies the same rule inside the same scope
    assert list(usage_units_for(actor=admin_a, unit="UNITA")) == [unit_a]
    with pytest.raises(NotFound):
        usage_units_for(actor=admin_a, unit=unit_b.public_id)


@pytest.mark.django_db
def test_motd_send_and_the_commands_take_every_form(unit_a, unit_b, admin_a):
    operator = UserFactory(role=Role.SUPER_ADMIN)
    motd = motd_add(by=operator, message="Maintenance on Friday.")
    for ident in ("Unit A", "UNITA", unit_a.public_id):
        assert motd_send(by=operator, motd_id=motd.pk, unit=ident) == 1  # admin_a
    with pytest.raises(NotFound):
        motd_send(by=operator, motd_id=motd.pk, unit="nope")

    out = io.StringIO()
    call_command("usage_report", "--month", "2026-01", "--unit", unit_a.public_id,
                 "--csv", "-", stdout=out)
    assert "unita" in out.getvalue() and "unitb" not in out.getvalue()
    for command in (["usage_report", "--month", "2026-01"], ["storage_reconcile", "--dry-run"]):
        with pytest.raises(CommandError, match="name, internal ref or public id"):
            call_command(*command, "--unit", "nope", stdout=io.StringIO(),
                         stderr=io.StringIO())


@pytest.mark.django_db
def test_the_api_takes_every_form_and_gives_a_404_otherwise(unit_a, unit_b):
    operator, operator_pw = keyed_user(Role.SUPER_ADMIN, None, "uf-super")
    admin, admin_pw = keyed_user(Role.UNIT_ADMIN, unit_a, "uf-admin")
    su = bearer(api_login(operator, operator_pw)["access"])
    made = su.post("/api/v1/invites", {"email": "new.staff@example.org",
                                       "role": Role.UNIT_PERSONNEL, "unit": "UNITB"},
                   format="json")
    assert made.status_code == 201, made.content
    assert Invite.objects.get(email="new.staff@example.org").unit == unit_b
    missing = su.post("/api/v1/invites", {"email": "x@example.org",
                                          "role": Role.UNIT_PERSONNEL, "unit": "nope"},
                      format="json")
    assert missing.status_code == 404 and "public id" in missing.json()["detail"]
    # unit staff: another unit, by any of its names, is the same 404
    mine = bearer(api_login(admin, admin_pw)["access"])
    for ident in (unit_b.public_id, "unitb", "Unit B", "nope"):
        got = mine.get("/api/v1/users", {"unit": ident})
        assert got.status_code == 404, (ident, got.content)
    assert mine.get("/api/v1/users", {"unit": unit_a.public_id}).status_code == 200
