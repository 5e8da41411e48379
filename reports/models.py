"""What the reports remember: which monthly usage reports were sent, and the monthly
statistics snapshots (docs/operator-guide.md, "Invoicing" and "Statistics")."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class UsageReportDispatch(models.Model):
    """The monthly usage report of ``month`` was emailed (to every unit's billing contact
    and the operators). One row per month: a re-run of the job (the CronJob's retry)
    finds it and sends nothing again."""

    month = models.DateField(unique=True, help_text="First day of the reported month.")
    sent_at = models.DateTimeField(default=timezone.now)
    units = models.PositiveIntegerField(default=0, help_text="Units emailed.")
    gb_months = models.DecimalField(max_digits=24, decimal_places=6, default=0)

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(condition=models.Q(month__day=1),
                                   name="usage_report_dispatch_first_day"),
        ]

    def __str__(self) -> str:
        return f"Usage report {self.month:%Y-%m}"


class StatsSnapshot(models.Model):
    """The whole system at the end of one month (or, for the current month, when taken).

    One row per month; taking a month again replaces its row. What each figure counts is
    in docs/operator-guide.md ("Statistics").
    """

    month = models.DateField(unique=True, help_text="First day of the month.")
    taken_at = models.DateTimeField(default=timezone.now)
    #: The instant the figures describe: the end of the month, or ``taken_at`` before it.
    as_of = models.DateTimeField()
    units = models.PositiveIntegerField(default=0)
    users_super_admin = models.PositiveIntegerField(default=0)
    users_unit_admin = models.PositiveIntegerField(default=0)
    users_unit_personnel = models.PositiveIntegerField(default=0)
    users_researcher = models.PositiveIntegerField(default=0)
    projects_in_progress = models.PositiveIntegerField(default=0)
    projects_available = models.PositiveIntegerField(default=0)
    projects_expired = models.PositiveIntegerField(default=0)
    bytes_stored = models.PositiveBigIntegerField(default=0)
    bytes_uploaded = models.PositiveBigIntegerField(default=0)
    bytes_downloaded = models.PositiveBigIntegerField(default=0)
    deliveries_released = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["month"]
        verbose_name = "statistics snapshot"
        constraints = [
            models.CheckConstraint(condition=models.Q(month__day=1),
                                   name="stats_snapshot_first_day"),
        ]

    def __str__(self) -> str:
        return f"Statistics {self.month:%Y-%m}"

    @property
    def users_total(self) -> int:
        return (self.users_super_admin + self.users_unit_admin + self.users_unit_personnel
                + self.users_researcher)

    @property
    def projects_active(self) -> int:
        return self.projects_in_progress + self.projects_available + self.projects_expired
