"""A unit that crosses its quota warning level is told once, by email, per crossing.

"Crossing" is the stored bytes of live file versions reaching ``warning_level`` of the
quota (the share the admin marks with ⚠). The first check that sees it above queues one
email to the unit's contact address and to ``DDS_OPERATOR_EMAILS`` and remembers the
crossing in the shared cache; later checks stay quiet until the unit is back below the
level (files removed, quota raised), which re-arms the warning.

Checked after every completed upload (ddsite.observability, from the audited
``file.upload``; cheaply, see ``quota_check_after_upload``); ``quota_check_all`` checks
every unit (for a job or a shell).
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

from accounts.models import Unit
from core import metrics
from jobs.runner import operator_emails
from mail.services import mail_send_template
from projects.models import Project
from transfers.selectors import unit_bytes_used

logger = logging.getLogger("dds.quota")


def _key(unit_id: int) -> str:
    return f"dds:quota-warned:{unit_id}"


def _estimate_key(unit_id: int) -> str:
    return f"dds:quota-estimate:{unit_id}"


ESTIMATE_SECONDS = 600


def quota_check(*, unit) -> bool:
    """Email on a new crossing; True if this call sent the warning."""
    if not unit.quota_bytes:
        return False
    stored, _reserved = unit_bytes_used(unit_id=unit.pk)
    cache.set(_estimate_key(unit.pk), stored, timeout=ESTIMATE_SECONDS)
    share = stored / unit.quota_bytes
    if share < unit.warning_level:
        cache.delete(_key(unit.pk))  # back below: the next crossing warns again
        return False
    # add() is atomic in the shared cache: two web pods finishing uploads at once send one.
    if not cache.add(_key(unit.pk), {"share": share}, timeout=None):
        return False
    context = {"unit": unit, "stored": stored, "percent": round(share * 100),
               "level_percent": round(unit.warning_level * 100)}
    with transaction.atomic():
        mail_send_template(template="units/quota_warning", context=context,
                           to=[unit.contact_email, *operator_emails()])
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


def quota_check_all() -> int:
    return sum(quota_check(unit=unit) for unit in Unit.objects.all())
