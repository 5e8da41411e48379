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
