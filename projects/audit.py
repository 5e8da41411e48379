"""The audit trail: append and verify the hash chain.

Every service that does something security-relevant calls ``audit_record`` inside its
transaction, so an action and its audit row commit or roll back together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from projects.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def _digest(*, prev_hash: str, actor_username: str, action: str, project_public_id: str,
            target: str, ip: str | None, at_iso: str, details: dict[str, Any]) -> str:
    canonical = json.dumps(
        [prev_hash, actor_username, action, project_public_id, target, ip, at_iso, details],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _event_digest(event: AuditEvent, prev_hash: str) -> str:
    return _digest(prev_hash=prev_hash, actor_username=event.actor_username,
                   action=event.action, project_public_id=event.project_public_id,
                   target=event.target, ip=event.ip, at_iso=event.at.isoformat(),
                   details=event.details)


@transaction.atomic
def audit_record(*, action: str, actor=None, project=None, target: str = "",
                 ip: str | None = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event. Never put a secret in ``details``: the log is readable by staff."""
    AuditChainHead.objects.get_or_create(id=1, defaults={"last_hash": GENESIS})
    # The row lock serialises appenders so the chain never forks.
    head = AuditChainHead.objects.select_for_update().get(id=1)
    event = AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_username=getattr(actor, "username", "") or "",
        action=action,
        project=project,
        project_public_id=getattr(project, "public_id", "") or "",
        target=str(target)[:255],
        ip=ip,
        at=timezone.now(),
        details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=head.last_hash,
    )
    event.hash = _event_digest(event, head.last_hash)
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


@dataclass
class AuditVerification:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def audit_verify(*, batch_size: int = 2000) -> AuditVerification:
    """Walk the chain in id order and recompute every hash."""
    prev = GENESIS
    checked = 0
    last = None
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.prev_hash != prev:
            return AuditVerification(False, checked, event.id,
                                     "previous-hash link broken (row removed or reordered)")
        if _event_digest(event, prev) != event.hash:
            return AuditVerification(False, checked, event.id, "content does not match hash")
        prev = event.hash
        last = event
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head and last and head.last_hash != last.hash:
        return AuditVerification(False, checked, None,
                                 "chain head does not match the last event (tail removed)")
    return AuditVerification(True, checked)
