from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class StorageLocation(models.Model):
    """Where a unit's objects live: an S3-compatible endpoint, or the local backend.

    Credentials are sealed under a server key (core.sealing) and never shown again after
    saving; the region/endpoint must be on the allowed list (data stays in one
    jurisdiction).
    """

    unit = models.ForeignKey("accounts.Unit", on_delete=models.CASCADE,
                             related_name="storage_locations")
    name = models.CharField(max_length=100)
    endpoint = models.URLField(blank=True, help_text="Empty for the local backend.")
    region = models.CharField(max_length=64)
    bucket_prefix = models.CharField(max_length=30, blank=True)
    access_key_sealed = models.BinaryField(null=True, blank=True, editable=False)
    secret_key_sealed = models.BinaryField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit"], condition=models.Q(is_active=True),
                                    name="one_active_storage_location_per_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_key_sealed and self.secret_key_sealed)


class File(models.Model):
    """The current version of one delivered file.

    ``header`` is the 124-byte Crypt4GH header (the wrapped per-file session key); the
    object in storage holds only the data segments.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="files")
    path = models.CharField(max_length=1024, help_text="Path within the project.")
    name = models.CharField(max_length=255)
    folder = models.CharField(max_length=1024, blank=True, help_text="'' for the root.")
    object_key = models.CharField(max_length=255, unique=True)
    size_original = models.PositiveBigIntegerField()
    size_stored = models.PositiveBigIntegerField()
    compressed = models.BooleanField(default=False)
    header = models.BinaryField()
    checksum = models.CharField("SHA-256", max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    last_downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "path"], name="file_path_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "folder", "name"], name="file_folder_idx"),
        ]

    def __str__(self) -> str:
        return self.path


class Folder(models.Model):
    """A folder of a project's catalogue with recursive totals, kept by the services.

    Derived from File rows (``transfers.services.folders_rebuild`` recomputes it), stored
    so that listing a folder of a project with 100 000 files reads a page of rows instead
    of aggregating every file underneath it. The root folder has path ''.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="folders")
    path = models.CharField(max_length=1024)
    parent = models.CharField(max_length=1024, blank=True)
    name = models.CharField(max_length=255, blank=True)
    file_count = models.PositiveBigIntegerField(default=0)
    size_original = models.PositiveBigIntegerField(default=0)
    size_stored = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "path"], name="folder_path_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "parent", "name"], name="folder_parent_idx"),
        ]

    def __str__(self) -> str:
        return self.path or "/"


class FileVersion(models.Model):
    """Every stored object a file ever had, for invoicing (kept after overwrite/delete)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="file_versions")
    file = models.ForeignKey(File, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="versions")
    object_key = models.CharField(max_length=255)
    size_stored = models.PositiveBigIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    invoiced_until = models.DateTimeField(null=True, blank=True)
    #: Set by storage reconciliation when the object of this live version is not in
    #: storage (transfers.services.reconcile); downloads of it are refused until the
    #: object is back (cleared by the next run) or the file is uploaded again.
    lost_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["project", "deleted_at"], name="version_project_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.object_key} ({self.size_stored} B)"


class UploadStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"


class Upload(models.Model):
    """A multipart upload in progress; its reserved bytes count against the unit quota."""

    public_id = models.CharField(max_length=32, unique=True)
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="uploads")
    path = models.CharField(max_length=1024)
    object_key = models.CharField(max_length=255, unique=True)
    multipart_id = models.CharField(max_length=1024, blank=True)
    size_original = models.PositiveBigIntegerField()
    reserved_bytes = models.PositiveBigIntegerField()
    part_size = models.PositiveIntegerField()
    #: A single-PUT upload (no multipart): the exact bytes its URL was signed for.
    put_size = models.PositiveBigIntegerField(null=True, blank=True)
    #: "crc32": every part (or the single PUT) carries its CRC32, signed into its URL and
    #: verified by storage; "": not checksummed (older clients, or the switch is off).
    part_checksum = models.CharField(max_length=8, blank=True, default="", db_default="")
    overwrite = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=UploadStatus.choices,
                              default=UploadStatus.IN_PROGRESS)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "path"],
                condition=models.Q(status="in_progress"),
                name="one_active_upload_per_path",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="upload_stale_idx")]

    def __str__(self) -> str:
        return f"upload of {self.path}"


class Usage(models.Model):
    """Stored byte-hours of a project over one invoicing period."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT,
                                related_name="usage")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    byte_hours = models.DecimalField(max_digits=30, decimal_places=2, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "period_start"],
                                    name="usage_period_unique"),
            models.CheckConstraint(condition=models.Q(period_end__gt=models.F("period_start")),
                                   name="usage_period_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.period_start:%Y-%m}"


class UsagePeriodRecorded(models.Model):
    """The recorder stored the period starting ``period_start`` (its ``Usage`` rows, none
    when nothing was stored then). One row per period: what "the month is recorded" means
    (``transfers.services.usage.usage_periods_recorded``), so a month with no usage is
    recorded too, and reports read it from the rows instead of computing it live."""

    period_start = models.DateTimeField(unique=True)
    period_end = models.DateTimeField()
    projects = models.PositiveIntegerField(default=0, db_default=0,
                                           help_text="Projects with a Usage row.")
    recorded_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        verbose_name = "recorded usage period"
        constraints = [
            models.CheckConstraint(condition=models.Q(period_end__gt=models.F("period_start")),
                                   name="usage_period_recorded_positive"),
        ]

    def __str__(self) -> str:
        return f"Usage recorded {self.period_start:%Y-%m}"
