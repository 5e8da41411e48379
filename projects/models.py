from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ProjectStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In Progress"
    AVAILABLE = "available", "Available"
    EXPIRED = "expired", "Expired"
    ARCHIVED = "archived", "Archived"
    DELETED = "deleted", "Deleted"


FINAL_STATUSES = (ProjectStatus.ARCHIVED, ProjectStatus.DELETED)


class Project(models.Model):
    """A delivery: data a unit uploads and releases to researchers for a limited time."""

    unit = models.ForeignKey("accounts.Unit", on_delete=models.PROTECT,
                             related_name="projects")
    public_id = models.CharField(max_length=32, unique=True, editable=False,
                                 help_text="<unit ref>-<counter>, e.g. ngi-00012.")
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    pi = models.CharField("PI", max_length=255, blank=True,
                          help_text="Principal investigator (name or email).")
    bucket = models.CharField(max_length=63, unique=True, editable=False)
    # X25519 public key (32 bytes) every file of the project is encrypted to.
    public_key = models.BinaryField(null=True, blank=True, editable=False)
    non_sensitive = models.BooleanField(default=False)
    # Denormalised from the latest ProjectStatusEvent, updated in the same transaction,
    # so lists and scheduler queries need no subquery.
    status = models.CharField(max_length=20, choices=ProjectStatus.choices,
                              default=ProjectStatus.IN_PROGRESS, editable=False)
    deadline = models.DateTimeField(null=True, blank=True, editable=False)
    released = models.BooleanField(default=False, editable=False,
                                   help_text="Has ever been released.")
    # Re-releases from Expired and extensions while Available; limited per project life.
    rerelease_count = models.PositiveSmallIntegerField(default=0, editable=False)
    # Set once deleted/archived data is gone from storage; the clean-up job looks for NULL.
    storage_purged_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True, editable=False)
    busy = models.BooleanField(default=False, editable=False,
                               help_text="A long operation holds the project.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "deadline"], name="project_status_deadline_idx"),
            models.Index(fields=["unit", "status"], name="project_unit_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id}: {self.title}"


class ProjectMembership(models.Model):
    """A researcher's access to a project (unit staff have access through their unit)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    is_owner = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project.public_id}"


class ProjectStatusEvent(models.Model):
    """One transition in a project's life; the full history is the list of these."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE,
                                related_name="status_events")
    status = models.CharField(max_length=20, choices=ProjectStatus.choices)
    deadline = models.DateTimeField(null=True, blank=True)
    is_aborted = models.BooleanField(default=False)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                           on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["project", "at"], name="status_event_project_idx")]

    def __str__(self) -> str:
        return f"{self.project.public_id} → {self.get_status_display()} at {self.at:%Y-%m-%d}"


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
    action = models.CharField(max_length=64)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
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

    def __str__(self) -> str:
        return f"{self.scope}: {self.count}"
