"""How much a project (and a unit) stores: the one definition, as queryset annotations.

A project stores the bytes of its live file versions (a replaced or removed file's
version is closed), which is also what the unit's quota counts. Lists, the admin, the API
and the quota all read these, as correlated subqueries: one query for a whole list, no
N+1 and no fan-out with joined tables.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import (
    Count,
    DecimalField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.aggregates import Aggregate
from django.db.models.functions import Coalesce

from transfers.models import FileVersion, Upload, UploadStatus, Usage

_QS = TypeVar("_QS", bound=QuerySet[Any])

_BYTE_HOURS = DecimalField(max_digits=30, decimal_places=2)


def _per_row(rows: QuerySet[Any], outer: str, total: Aggregate,
             output: IntegerField | DecimalField | None = None) -> Coalesce:
    """``total`` over the ``rows`` that belong (through ``outer``) to the outer row; 0 for
    none."""
    output = output or IntegerField()
    sub = (rows.filter(**{outer: OuterRef("pk")}).order_by().values(outer)
           .annotate(total=total).values("total")[:1])
    return Coalesce(Subquery(sub, output_field=output), Value(0, output_field=output))


def _live_versions() -> QuerySet[FileVersion]:
    return FileVersion.objects.filter(deleted_at__isnull=True)


def project_stored_bytes() -> Coalesce:
    return _per_row(_live_versions(), "project", Sum("size_stored"))


def project_file_count() -> Coalesce:
    return _per_row(_live_versions(), "project", Count("pk"))


def unit_stored_bytes() -> Coalesce:
    return _per_row(_live_versions(), "project__unit", Sum("size_stored"))


def unit_reserved_bytes() -> Coalesce:
    """Bytes reserved by the unit's uploads in progress (the quota counts them too)."""
    return _per_row(Upload.objects.filter(status=UploadStatus.IN_PROGRESS), "project__unit",
                    Sum("reserved_bytes"))


def with_file_totals(qs: _QS) -> _QS:
    """Projects with ``size`` (stored bytes) and ``file_count`` (files now there)."""
    return qs.annotate(size=project_stored_bytes(), file_count=project_file_count())


def with_project_storage(qs: _QS) -> _QS:
    """Projects with ``stored_bytes`` (as ``size`` above) and ``usage_byte_hours``
    (invoiced periods)."""
    return qs.annotate(stored_bytes=project_stored_bytes(),
                       usage_byte_hours=_per_row(Usage.objects.all(), "project",
                                                 Sum("byte_hours"), _BYTE_HOURS))


def with_unit_storage(qs: _QS) -> _QS:
    """Units with ``stored_bytes`` of their projects and ``reserved_bytes`` of their
    uploads in progress: what the quota counts."""
    return qs.annotate(stored_bytes=unit_stored_bytes(), reserved_bytes=unit_reserved_bytes())
