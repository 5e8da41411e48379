from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ProjectUserKey(models.Model):
    """The project's X25519 private key, RSA-OAEP-encrypted to one user's public key.

    Having a row is what "has access to the project's data" means cryptographically.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="user_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="project_keys")
    key_encrypted = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="project_user_key_unique"),
        ]

    def __str__(self) -> str:
        return f"key of {self.project_id} for {self.user_id}"


class InviteProjectKey(models.Model):
    """The project's private key encrypted to an invite's key pair, until registration."""

    invite = models.ForeignKey("accounts.Invite", on_delete=models.CASCADE,
                               related_name="project_keys")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="invite_keys")
    key_encrypted = models.BinaryField()
    is_owner = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invite", "project"],
                                    name="invite_project_key_unique"),
        ]

    def __str__(self) -> str:
        return f"key of {self.project_id} for invite {self.invite_id}"


class KeyRotationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class KeyRotation(models.Model):
    """A project key rotation in progress (or finished).

    While running, the old and new private keys are kept here sealed under the server key
    (core.sealing), so the Celery task receives only this row's id and can resume after a
    crash; both sealed keys are erased when the rotation finishes.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="key_rotations")
    status = models.CharField(max_length=10, choices=KeyRotationStatus.choices,
                              default=KeyRotationStatus.RUNNING)
    new_public_key = models.BinaryField()
    old_private_key_sealed = models.BinaryField(null=True, blank=True)
    new_private_key_sealed = models.BinaryField(null=True, blank=True)
    files_done = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=models.Q(status="running"),
                                    name="one_running_rotation_per_project"),
        ]

    def __str__(self) -> str:
        return f"key rotation of {self.project_id} ({self.status})"
