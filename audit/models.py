"""The audit log's rows: the events and the head of each scope's chain (audit.services)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Append-only, keyed hash-chained record of security-relevant actions.

    Events are chained per *scope* (a project, else the acting user, else ``system``):
    ``seq`` counts 1, 2, 3... within the scope and ``hash`` is an HMAC, under a key that is
    not in the database (``DDS_AUDIT_KEY``), of the content, the scope, ``seq`` and the
    previous event's ``hash``. Editing, removing, inserting or reordering rows breaks the
    chain (``manage.py audit_verify``; docs/audit.md). Names are copied, not only linked,
    so deleting a user or project does not erase who did what.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)  #: an audit.actions.AuditAction value
    project = models.ForeignKey("projects.Project", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    project_public_id = models.CharField(max_length=32, blank=True)
    target = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)
    scope = models.CharField(max_length=64, default="system")
    seq = models.BigIntegerField(default=0)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        # Created by projects (0001) before the audit log became its own app.
        db_table = "projects_auditevent"
        indexes = [
            models.Index(fields=["project_public_id", "at"], name="audit_project_idx"),
            models.Index(fields=["action", "at"], name="audit_action_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["scope", "seq"], name="audit_scope_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username or '-'} {self.action}"


class AuditChainHead(models.Model):
    """The head of one scope's chain: how many events it has and the last one's HMAC.

    Locked (``FOR NO KEY UPDATE``) by an appender of that scope only, so events of
    unrelated projects or users never wait for each other. ``mac`` binds scope, count and
    last hash under the audit key, so the head cannot be rolled back to hide a removed tail
    without the key (a replayed old head is caught by the logged checkpoints).
    """

    scope = models.CharField(max_length=64, unique=True)
    count = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    mac = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "projects_auditchainhead"

    def __str__(self) -> str:
        return f"{self.scope}: {self.count}"
