"""Unit edits: the operator sets identity, quota, days, price and billing address; a unit's
own admins its display name, contact address and warning level. Every edit, from the admin
or elsewhere, goes through accounts.services.unit_update and is audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import Unit
from accounts.tests.helpers import portal_login
from audit.models import AuditEvent


def _change_url(unit):
    return reverse("admin:accounts_unit_change", args=[unit.pk])


def _form(unit, **overrides):
    """Every editable field of the unit as the change form posts it."""
    data = {"name": unit.name, "display_name": unit.display_name,
            "contact_email": unit.contact_email, "internal_ref": unit.internal_ref,
            "days_in_available": unit.days_in_available,
            "days_in_expired": unit.days_in_expired, "quota_bytes": unit.quota_bytes,
            "warning_level": unit.warning_level, "billing_email": unit.billing_email,
            "price_per_gb_month": "" if unit.price_per_gb_month is None
            else unit.price_per_gb_month}
    return {**data, **overrides}


@pytest.fixture
def billed_unit(unit_a):
    unit_a.billing_email = "finance@example.org"
    unit_a.price_per_gb_month = Decimal("0.5000")
    unit_a.save()
    return unit_a


def test_every_editable_unit_field_is_classified():
    """A new Unit field must be declared the operator's or the unit's."""
    editable = {f.name for f in Unit._meta.fields if f.editable and not f.primary_key}
    assert editable == set(services.UNIT_EDITABLE_FIELDS)
    assert not set(services.UNIT_OPERATOR_FIELDS) & set(services.UNIT_STAFF_FIELDS)


@pytest.mark.django_db
def test_unit_admin_cannot_change_price_billing_days_or_quota(client, admin_a, billed_unit):
    before = Unit.objects.get(pk=billed_unit.pk)
    portal_login(client, admin_a)
    page = client.get(_change_url(billed_unit)).content.decode()
    assert 'name="price_per_gb_month"' not in page and 'name="billing_email"' not in page
    response = client.post(_change_url(billed_unit), _form(
        billed_unit, price_per_gb_month="0.0001", billing_email="me@example.org",
        days_in_available=1, days_in_expired=90, quota_bytes=10**18, name="Renamed",
        internal_ref="other", display_name="Unit A sequencing"))
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Unit.objects.get(pk=billed_unit.pk)
    for field in services.UNIT_OPERATOR_FIELDS:
        assert getattr(after, field) == getattr(before, field), field
    assert after.display_name == "Unit A sequencing"
    event = AuditEvent.objects.get(action="unit.update")
    assert event.actor == admin_a and event.target == after.name and event.ip
    assert event.details == {"fields": {"display_name": {"old": before.display_name,
                                                         "new": "Unit A sequencing"}}}


@pytest.mark.django_db
def test_the_service_refuses_operator_fields_to_anyone_else(admin_a, admin_b, personnel_a,
                                                           billed_unit):
    with pytest.raises(PermissionDenied, match="price_per_gb_month"):
        services.unit_update(unit=billed_unit, by=admin_a, price_per_gb_month=Decimal(0))
    with pytest.raises(PermissionDenied, match="billing_email"):
        services.unit_update(unit=billed_unit, by=admin_a, billing_email="x@example.org")
    for outsider in (admin_b, personnel_a):
        with pytest.raises(PermissionDenied):
            services.unit_update(unit=billed_unit, by=outsider, display_name="Mine")
    billed_unit.refresh_from_db()
    assert billed_unit.price_per_gb_month == Decimal("0.5000")
    assert billed_unit.display_name != "Mine"
    assert not AuditEvent.objects.filter(action="unit.update").exists()


@pytest.mark.django_db
def test_contact_email_that_receives_invoices_is_the_operators(client, admin_a, unit_a):
    """Without a billing email the usage reports go to the contact address."""
    assert unit_a.billing_email == ""
    portal_login(client, admin_a)
    response = client.post(_change_url(unit_a), _form(unit_a, contact_email="me@example.org"))
    assert response.status_code == 200
    assert "ask the operator to set a billing email" in response.content.decode()
    unit_a.refresh_from_db()
    assert unit_a.contact_email != "me@example.org"


@pytest.mark.django_db
def test_unit_admin_changes_contact_email_when_billing_is_set(client, admin_a, billed_unit):
    portal_login(client, admin_a)
    response = client.post(_change_url(billed_unit),
                           _form(billed_unit, contact_email="desk@example.org"))
    assert response.status_code == 302
    billed_unit.refresh_from_db()
    assert billed_unit.contact_email == "desk@example.org"
    assert billed_unit.billing_email == "finance@example.org"


@pytest.mark.django_db
def test_operator_changes_price_and_billing_audited(client, superadmin, billed_unit):
    portal_login(client, superadmin)
    response = client.post(_change_url(billed_unit), _form(
        billed_unit, price_per_gb_month="0.2500", billing_email="ap@example.org",
        days_in_expired=14))
    assert response.status_code == 302, response.content.decode()[:2000]
    billed_unit.refresh_from_db()
    assert billed_unit.price_per_gb_month == Decimal("0.2500")
    assert billed_unit.billing_email == "ap@example.org" and billed_unit.days_in_expired == 14
    event = AuditEvent.objects.get(action="unit.update")
    assert event.actor == superadmin and event.ip
    assert event.details["fields"] == {
        "billing_email": {"old": "finance@example.org", "new": "ap@example.org"},
        "days_in_expired": {"old": 30, "new": 14},
        "price_per_gb_month": {"old": "0.5000", "new": "0.2500"}}


@pytest.mark.django_db
def test_saving_an_unchanged_unit_records_nothing(client, superadmin, billed_unit):
    portal_login(client, superadmin)
    assert client.post(_change_url(billed_unit), _form(billed_unit)).status_code == 302
    assert not AuditEvent.objects.filter(action="unit.update").exists()


@pytest.mark.django_db
def test_a_hidden_character_in_a_name_is_a_form_error(client, superadmin, admin_a,
                                                      billed_unit):
    portal_login(client, superadmin)
    response = client.post(_change_url(billed_unit),
                           _form(billed_unit, display_name="Unit\u202eA"))
    assert response.status_code == 200 and "U+202E" in response.content.decode()
    billed_unit.refresh_from_db()
    assert "\u202e" not in billed_unit.display_name
    with pytest.raises(ValidationError):
        services.unit_update(unit=billed_unit, by=admin_a, display_name="Unit\u200bA")


@pytest.mark.django_db
def test_operator_adds_a_unit_through_the_service(client, superadmin):
    portal_login(client, superadmin)
    unit = Unit(name="New unit", display_name="New unit facility",
                contact_email="new@example.org", internal_ref="newu", billing_email="")
    response = client.post(reverse("admin:accounts_unit_add"),
                           _form(unit, price_per_gb_month="0.1000"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Unit.objects.get(internal_ref="newu")
    assert created.price_per_gb_month == Decimal("0.1000")
    event = AuditEvent.objects.get(action="unit.create")
    assert event.actor == superadmin and event.target == "New unit" and event.ip
