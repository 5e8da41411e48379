import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from audit.services import audit_record, audit_verify


@pytest.mark.django_db
def test_chain_verifies_and_detects_edits(admin_a, project_a):
    for i in range(3):
        audit_record(action="project.update", actor=admin_a, project=project_a,
                     details={"i": i}, ip="127.0.0.1")
    assert audit_verify().ok and audit_verify().checked == 3
    call_command("audit_verify")

    AuditEvent.objects.filter(details__i=1).update(action="test.forged")
    result = audit_verify()
    assert not result.ok and "content" in result.reason
    with pytest.raises(CommandError):
        call_command("audit_verify")


@pytest.mark.django_db
def test_chain_detects_a_removed_row(admin_a):
    events = [audit_record(action="project.update", actor=admin_a) for _ in range(3)]
    events[1].delete()
    result = audit_verify()
    assert not result.ok and result.first_bad_id == events[2].id


@pytest.mark.django_db
def test_chain_detects_a_removed_tail(admin_a):
    events = [audit_record(action="project.update", actor=admin_a) for _ in range(3)]
    events[2].delete()
    assert not audit_verify().ok


@pytest.mark.django_db
def test_names_survive_deleting_the_actor(admin_a):
    audit_record(action="project.update", actor=admin_a)
    username = admin_a.username
    admin_a.delete()
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_username == username
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_action_outside_the_registry_is_refused(admin_a):
    """A typo cannot invent a kind of event that no report or alert knows about."""
    with pytest.raises(ValueError):
        audit_record(action="project.relase", actor=admin_a)
    assert not AuditEvent.objects.filter(action="project.relase").exists()
