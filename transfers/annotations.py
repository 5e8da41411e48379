"""Queryset annotations for storage totals, so lists show them without N+1 queries."""

from __future__ import annotations

from django.db.models import Count, DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from transfers.models import File, FileVersion, Upload, UploadStatus, Usage


def _sum(qs, field: str, output=None):
    sub = qs.order_by().values(qs.model._meta.get_field("project").attname)
    sub = sub.annotate(total=Sum(field)).values("total")[:1]
    if output is not None:
        return Coalesce(Subquery(sub, output_field=output), Value(0, output_field=output))
    return Coalesce(Subquery(sub), 0)


def with_file_totals(qs):
    """``size`` (stored bytes of the current files) and ``file_count`` per project, as two
    correlated subqueries: one query for a whole list, no fan-out with joined tables."""
    files = File.objects.filter(project=OuterRef("pk")).order_by().values("project")
    return qs.annotate(
        size=Coalesce(Subquery(files.annotate(s=Sum("size_stored")).values("s")[:1]), 0),
        file_count=Coalesce(Subquery(files.annotate(c=Count("pk")).values("c")[:1]), 0),
    )


def with_project_storage(qs):
    """``stored_bytes`` (live versions) and ``usage_byte_hours`` (invoiced periods)."""
    return qs.annotate(
        stored_bytes=_sum(FileVersion.objects.filter(project=OuterRef("pk"),
                                                     deleted_at__isnull=True), "size_stored"),
        usage_byte_hours=_sum(Usage.objects.filter(project=OuterRef("pk")), "byte_hours",
                              DecimalField(max_digits=30, decimal_places=2)),
    )


def with_unit_storage(qs):
    """``stored_bytes`` of every live version in the unit's projects, and
    ``reserved_bytes`` of its uploads in progress (what the quota counts)."""
    versions = (FileVersion.objects.filter(project__unit=OuterRef("pk"), deleted_at__isnull=True)
                .order_by().values("project__unit").annotate(total=Sum("size_stored"))
                .values("total")[:1])
    uploads = (Upload.objects.filter(project__unit=OuterRef("pk"),
                                     status=UploadStatus.IN_PROGRESS)
               .order_by().values("project__unit").annotate(total=Sum("reserved_bytes"))
               .values("total")[:1])
    return qs.annotate(stored_bytes=Coalesce(Subquery(versions), 0),
                       reserved_bytes=Coalesce(Subquery(uploads), 0))
