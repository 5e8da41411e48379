"""The audit chain becomes keyed (HMAC under DDS_AUDIT_KEY) and per scope.

Existing events were one plain SHA-256 chain. They are first checked against that chain
(the result is recorded in an ``audit.rechain`` event), then re-chained in id order into
their scopes under the audit key.
"""

from django.db import migrations, models


def rechain(apps, schema_editor):
    from audit import services as audit

    Event = apps.get_model("projects", "AuditEvent")
    Head = apps.get_model("projects", "AuditChainHead")
    legacy_ok, legacy_checked = audit.legacy_chain_check(Event.objects.order_by("id"))
    Head.objects.all().delete()
    heads: dict[str, tuple[int, str]] = {}
    for event in Event.objects.order_by("id").iterator(chunk_size=2000):
        scope = audit.scope_for(project_public_id=event.project_public_id,
                                actor_id=event.actor_id)
        count, last = heads.get(scope, (0, audit.GENESIS))
        event.scope, event.seq, event.prev_hash = scope, count + 1, last
        event.hash = audit.event_mac(event)
        event.save(update_fields=["scope", "seq", "prev_hash", "hash"])
        heads[scope] = (count + 1, event.hash)
    for scope, (count, last) in heads.items():
        Head.objects.create(scope=scope, count=count, last_hash=last,
                            mac=audit.head_mac(scope=scope, count=count, last_hash=last))
    if legacy_checked:
        # Said in the new chain itself: whether the old, unkeyed chain was intact.
        from django.utils import timezone

        count, last = heads.get("system", (0, audit.GENESIS))
        event = Event(action="audit.rechain", at=timezone.now(), scope="system",
                      seq=count + 1, prev_hash=last,
                      details={"legacy_events": legacy_checked, "legacy_intact": legacy_ok})
        event.hash = audit.event_mac(event)
        event.save()
        Head.objects.update_or_create(scope="system", defaults={
            "count": count + 1, "last_hash": event.hash,
            "mac": audit.head_mac(scope="system", count=count + 1, last_hash=event.hash)})


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0002_project_rerelease_count_project_storage_purged_at"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="auditchainhead", name="audit_head_singleton"),
        migrations.AddField(model_name="auditchainhead", name="scope",
                            field=models.CharField(default="system", max_length=64)),
        migrations.AddField(model_name="auditchainhead", name="count",
                            field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name="auditchainhead", name="mac",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="auditevent", name="scope",
                            field=models.CharField(default="system", max_length=64)),
        migrations.AddField(model_name="auditevent", name="seq",
                            field=models.BigIntegerField(default=0)),
        migrations.RunPython(rechain, migrations.RunPython.noop),
        migrations.AlterField(model_name="auditchainhead", name="scope",
                              field=models.CharField(max_length=64, unique=True)),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("scope", "seq"),
                                               name="audit_scope_seq_unique")),
    ]
