"""Quota warnings: a unit whose stored bytes cross its warning level is told once per
crossing.

"Crossing" is the stored bytes of live file versions reaching ``warning_level`` of the
quota (the share the admin marks with ⚠). The first check that sees a unit above its
level claims the crossing with a conditional UPDATE of ``Unit.quota_warned_at`` (NULL ->
now): the one check whose UPDATE changes the row sends the email, so two web pods or a
pod and the job checking at once send one, and a cache flush forgets nothing. Later
checks stay quiet until the unit is back below the level (files removed, quota raised),
which clears ``quota_warned_at`` and so re-arms the warning.

The email goes to the unit's active Unit Admins, its contact address and the operators
(``DDS_OPERATOR_EMAILS``), and the warning is audited (``quota.warning``).

Checked after every completed upload (ddsite.observability, from the audited
``file.upload``; cheaply, see :func:`quota_check_after_upload`) and for every unit by the
scheduled ``quota_monitor`` command (:func:`quota_check_all`), which also catches
crossings the upload path cannot see (a quota or level lowered in the admin) and re-arms
units that went back below.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, Unit, User
from audit.actions import AuditAction
from audit.services import audit_record
from core import metrics
from jobs.runner import operator_emails
from mail.services import mail_send_template
from projects.models import Project
from transfers.selectors import unit_bytes_used

logger = logging.getLogger("dds.quota")

#: How long the last sum of a unit's stored bytes serves the after-upload estimate.
ESTIMATE_SECONDS = 600


def _estimate_key(unit_id: int) -> str:
    return f"dds:quota-estimate:{unit_id}"


def quota_warning_recipients(*, unit: Unit) -> list[str]:
    """The unit's active Unit Admins, its contact address and the operators."""
    admins = (User.objects.filter(unit=unit, role=Role.UNIT_ADMIN, is_active=True)
              .exclude(email="").values_list("email", flat=True))
    return sorted({*admins, unit.contact_email, *operator_emails()} - {""})


def quota_check(*, unit: Unit, now: dt.datetime | None = None) -> bool:
    """Email on a new crossing; True if this call sent the warning.

    Below the level, a warned crossing is cleared (the next one warns again).
    """
    if not unit.quota_bytes:
        return False
    stored, _reserved = unit_bytes_used(unit_id=unit.pk)
    cache.set(_estimate_key(unit.pk), stored, timeout=ESTIMATE_SECONDS)
    share = stored / unit.quota_bytes
    if share < unit.warning_level:
        if Unit.objects.filter(pk=unit.pk, quota_warned_at__isnull=False).update(
                quota_warned_at=None):
            logger.info("unit %s is back below its quota warning level (%.0f%%)",
                        unit.internal_ref, share * 100, extra={"unit": unit.internal_ref})
        unit.quota_warned_at = None
        return False
    now = now or timezone.now()
    percent, level_percent = round(share * 100), round(unit.warning_level * 100)
    with transaction.atomic():
        # The row count decides who sends: a concurrent check's UPDATE waits for this
        # row lock, then finds quota_warned_at set and changes nothing.
        claimed = Unit.objects.filter(pk=unit.pk, quota_warned_at__isnull=True).update(
            quota_warned_at=now)
        if not claimed:
            unit.refresh_from_db(fields=["quota_warned_at"])
            return False
        mail_send_template(template="units/quota_warning",
                           context={"unit": unit, "stored": stored, "percent": percent,
                                    "level_percent": level_percent},
                           to=quota_warning_recipients(unit=unit))
        audit_record(action=AuditAction.QUOTA_WARNING, target=unit.name,
                     details={"unit": unit.internal_ref, "stored_bytes": stored,
                              "quota_bytes": unit.quota_bytes, "percent": percent,
                              "warning_level_percent": level_percent})
    unit.quota_warned_at = now
    metrics.QUOTA_WARNINGS.inc()
    logger.warning("unit %s crossed its quota warning level (%.0f%%)", unit.internal_ref,
                   share * 100, extra={"unit": unit.internal_ref})
    return True


def quota_check_after_upload(*, public_id: str, added: int) -> bool:
    """After a file of ``added`` stored bytes: check, unless clearly below the level.

    The unit's stored bytes are summed over all its files, too much work for every file
    of a large batch. So the last sum (kept 10 minutes) plus what was uploaded since is an
    upper bound (removals only lower the truth): below the level, nothing can have been
    crossed; at or above it, the real check decides.
    """
    project = Project.objects.select_related("unit").filter(public_id=public_id).first()
    if project is None or not project.unit.quota_bytes:
        return False
    unit = project.unit
    try:
        estimate = cache.incr(_estimate_key(unit.pk), max(0, int(added)))
    except ValueError:  # no recent sum
        estimate = None
    if estimate is not None and estimate < unit.warning_level * unit.quota_bytes:
        return False
    return quota_check(unit=unit)


@dataclass
class QuotaSummary:
    """What one check of every unit found (the ``quota_monitor`` job prints it)."""

    checked: int = 0
    above: list[str] = field(default_factory=list)  #: internal refs at/above their level
    warned: list[str] = field(default_factory=list)  #: ...of which warned by this run


def quota_check_all(*, now: dt.datetime | None = None) -> QuotaSummary:
    """Check every unit with a quota (one sum per unit); see :func:`quota_check`."""
    summary = QuotaSummary()
    for unit in Unit.objects.filter(quota_bytes__gt=0).order_by("pk").iterator():
        summary.checked += 1
        if quota_check(unit=unit, now=now):
            summary.warned.append(unit.internal_ref)
        if unit.quota_warned_at is not None:
            summary.above.append(unit.internal_ref)
    return summary
