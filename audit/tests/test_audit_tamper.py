"""The audit chain against someone who can write the database but has no audit key.

Every tamper case is done in SQL, as such an attacker would; an attacker who re-chains
uses a key of their own (they do not have ours). All must be detected by ``audit_verify``
(the cases that remove heads too by the checkpoint an earlier run printed).
"""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, override_settings

from audit.models import AuditChainHead, AuditEvent
from audit.services import audit_record, audit_verify, event_mac, head_mac

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(admin_a, project_a):
    events = [audit_record(action="project.update", actor=admin_a, project=project_a,
                           details={"i": i}, ip="10.0.0.1") for i in range(5)]
    events += [audit_record(action="auth.login", actor=admin_a, details={"i": i})
               for i in range(3)]
    result = audit_verify()
    assert result.ok and result.checked == 8 and result.scopes == 2
    return {"project": events[:5], "user": events[5:], "checkpoint": result.checkpoint,
            "project_scope": events[0].scope, "user_scope": events[5].scope}


def _sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _rechain_with_own_key(scope: str):
    """What an attacker without our key can do: recompute every link and the head."""
    with override_settings(DDS_AUDIT_KEY="attacker-" + "x" * 60):
        prev, count = "0" * 64, 0
        for event in AuditEvent.objects.filter(scope=scope).order_by("seq"):
            count += 1
            event.seq, event.prev_hash = count, prev
            event.hash = event_mac(event)
            AuditEvent.objects.filter(pk=event.pk).update(seq=count, prev_hash=prev,
                                                          hash=event.hash)
            prev = event.hash
        AuditChainHead.objects.filter(scope=scope).update(
            count=count, last_hash=prev, mac=head_mac(scope=scope, count=count, last_hash=prev))


def edit_field(c):
    _sql("UPDATE projects_auditevent SET action = 'project.view' WHERE id = %s",
         [c["project"][2].id])


def edit_details(c):
    _sql("UPDATE projects_auditevent SET details = '{\"i\": 99}' WHERE id = %s",
         [c["project"][1].id])


def edit_ip(c):
    _sql("UPDATE projects_auditevent SET ip = '192.0.2.9' WHERE id = %s", [c["user"][0].id])


def edit_and_rechain(c):
    edit_field(c)
    _rechain_with_own_key(c["project_scope"])


def delete_middle(c):
    _sql("DELETE FROM projects_auditevent WHERE id = %s", [c["project"][2].id])


def delete_first(c):
    _sql("DELETE FROM projects_auditevent WHERE id = %s", [c["user"][0].id])


def delete_tail(c):
    _sql("DELETE FROM projects_auditevent WHERE id = %s", [c["project"][-1].id])


def delete_tail_and_roll_back_head(c):
    last_kept = c["project"][-2]
    delete_tail(c)
    _sql("UPDATE projects_auditchainhead SET count = %s, last_hash = %s WHERE scope = %s",
         [last_kept.seq, last_kept.hash, c["project_scope"]])


def delete_all_events(c):
    _sql("DELETE FROM projects_auditevent")


def delete_everything(c):
    _sql("DELETE FROM projects_auditevent")
    _sql("DELETE FROM projects_auditchainhead")


def insert_forged(c):
    forged = AuditEvent(action="project.release", actor_username="mallory",
                        project_public_id=c["project"][0].project_public_id,
                        at=c["project"][1].at, details={}, scope=c["project_scope"], seq=2,
                        prev_hash=c["project"][0].hash)
    _sql("UPDATE projects_auditevent SET seq = seq + 100 WHERE scope = %s AND seq >= 2",
         [c["project_scope"]])
    _sql("UPDATE projects_auditevent SET seq = seq - 99 WHERE scope = %s AND seq >= 100",
         [c["project_scope"]])
    with override_settings(DDS_AUDIT_KEY="attacker-" + "x" * 60):
        forged.hash = event_mac(forged)
    AuditEvent.objects.bulk_create([forged])


def append_forged(c):
    last = c["project"][-1]
    forged = AuditEvent(action="project.release", actor_username="mallory",
                        project_public_id=last.project_public_id, at=last.at, details={},
                        scope=c["project_scope"], seq=last.seq + 1, prev_hash=last.hash)
    with override_settings(DDS_AUDIT_KEY="attacker-" + "x" * 60):
        forged.hash = event_mac(forged)
        mac = head_mac(scope=forged.scope, count=forged.seq, last_hash=forged.hash)
    AuditEvent.objects.bulk_create([forged])
    AuditChainHead.objects.filter(scope=forged.scope).update(
        count=forged.seq, last_hash=forged.hash, mac=mac)


def reorder(c):
    a, b = c["project"][1], c["project"][3]
    _sql("UPDATE projects_auditevent SET seq = -1 WHERE id = %s", [a.id])
    _sql("UPDATE projects_auditevent SET seq = %s WHERE id = %s", [a.seq, b.id])
    _sql("UPDATE projects_auditevent SET seq = %s WHERE id = %s", [b.seq, a.id])


def move_to_other_scope(c):
    _sql("UPDATE projects_auditevent SET scope = 'system', seq = 1 WHERE id = %s",
         [c["user"][-1].id])


def replay_old_head(c):
    """Tail removed and the head restored from an old backup (a validly signed head)."""
    old = c["project"][-2]
    delete_tail(c)
    _sql("UPDATE projects_auditchainhead SET count = %s, last_hash = %s, mac = %s "
         "WHERE scope = %s",
         [old.seq, old.hash, head_mac(scope=old.scope, count=old.seq, last_hash=old.hash),
          c["project_scope"]])


# Detected from the database alone, with the audit key.
IN_DATABASE = [edit_field, edit_details, edit_ip, edit_and_rechain, delete_middle,
               delete_first, delete_tail, delete_tail_and_roll_back_head, delete_all_events,
               insert_forged, append_forged, reorder, move_to_other_scope]
# Also the heads are gone or replayed: only a checkpoint kept outside the database shows it.
WITH_CHECKPOINT = [delete_everything, replay_old_head]


@pytest.mark.parametrize("tamper", IN_DATABASE, ids=lambda f: f.__name__)
def test_tampering_is_detected(chain, tamper):
    tamper(chain)
    result = audit_verify()
    assert not result.ok, tamper.__name__
    assert result.reason
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify")


@pytest.mark.parametrize("tamper", WITH_CHECKPOINT, ids=lambda f: f.__name__)
def test_removing_heads_too_is_detected_by_the_checkpoint(chain, tamper):
    tamper(chain)
    result = audit_verify(checkpoint=chain["checkpoint"])
    assert not result.ok and "checkpoint" in result.reason
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify", checkpoint=chain["checkpoint"])


def test_an_untouched_chain_passes_its_checkpoint_and_grows(chain, admin_a):
    assert audit_verify(checkpoint=chain["checkpoint"]).ok
    audit_record(action="project.update", actor=admin_a)
    assert audit_verify(checkpoint=chain["checkpoint"]).ok


def test_another_audit_key_verifies_nothing(chain):
    with override_settings(DDS_AUDIT_KEY="z" * 64):
        assert not audit_verify().ok


def test_scopes_chain_separately(admin_a, admin_b, project_a, project_b):
    a = audit_record(action="project.update", actor=admin_a, project=project_a)
    b = audit_record(action="project.update", actor=admin_b, project=project_b)
    u = audit_record(action="project.update", actor=admin_a)
    s = audit_record(action="project.update")
    assert (a.seq, b.seq, u.seq, s.seq) == (1, 1, 1, 1)
    assert {a.scope, b.scope, u.scope, s.scope} == {
        f"project:{project_a.public_id}", f"project:{project_b.public_id}",
        f"user:{admin_a.pk}", "system"}
    assert audit_verify().ok


def test_each_append_writes_a_checkpoint_to_the_log_after_commit(admin_a, caplog):
    caplog.set_level(logging.INFO, logger="dds.audit")
    with TestCase.captureOnCommitCallbacks(execute=True):
        event = audit_record(action="project.update", actor=admin_a)
        assert "audit checkpoint" not in caplog.text
    assert f"audit checkpoint scope={event.scope} count=1 last={event.hash}" in caplog.text


def test_verify_command_prints_a_checkpoint(chain, capsys):
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "intact: 8 events" in out and chain["checkpoint"] in out


def test_migration_rechains_a_legacy_chain_and_records_whether_it_was_intact(admin_a,
                                                                             project_a):
    import hashlib
    import importlib
    import json

    from django.apps import apps
    from django.utils import timezone

    prev = "0" * 64
    for n, (action, project) in enumerate((("a", project_a), ("b", None), ("c", project_a))):
        at = timezone.now()
        digest = hashlib.sha256(json.dumps(
            [prev, admin_a.username, action, project.public_id if project else "", "", None,
             at.isoformat(), {}], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        AuditEvent.objects.create(actor=admin_a, actor_username=admin_a.username,
                                  action=action, project=project, at=at,
                                  project_public_id=project.public_id if project else "",
                                  prev_hash=prev, hash=digest, seq=-n, scope="legacy")
        prev = digest
    migration = importlib.import_module("projects.migrations.0003_audit_scoped_keyed_chain")
    # The migration's historical state has the models in projects (before audit 0001).
    historical = type("Apps", (), {"get_model": lambda self, _app, name:
                                   apps.get_model("audit", name)})()
    migration.rechain(historical, None)
    assert audit_verify().ok and audit_verify().checked == 4
    assert [e.seq for e in AuditEvent.objects.filter(scope=f"project:{project_a.public_id}")
            .order_by("seq")] == [1, 2]
    note = AuditEvent.objects.get(action="audit.rechain")
    assert note.details == {"legacy_events": 3, "legacy_intact": True}


def test_the_verify_job_compares_with_its_last_checkpoint_in_the_shared_cache(chain):
    call_command("audit_verify")  # stores its checkpoint outside the database
    delete_everything(chain)
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify")
    call_command("audit_verify", no_cached_checkpoint=True)  # the database alone: empty
