"""The audit trail: append to and verify the keyed, per-scope hash chains.

Every service that does something security-relevant calls ``audit_record`` inside its
transaction, so an action and its audit row commit or roll back together.

Model (docs/audit.md):

- Events are chained per **scope**: ``project:<public id>`` for a project's events, else
  ``user:<pk>`` of the actor, else ``system``. An appender locks only its scope's
  ``AuditChainHead`` row, so events of unrelated projects and users never queue behind
  each other, and the head lock is the *last* lock a transaction takes (docs/locking.md).
- Each link is ``HMAC-SHA256(audit key, canonical(scope, seq, prev, content))``. The audit
  key comes from ``DDS_AUDIT_KEY`` (else HKDF of ``SECRET_KEY``); it is not in the database,
  so whoever can write the database but lacks the key cannot re-chain an edit or append a
  forged event.
- The head carries the scope's count and last MAC, itself MAC'd: removing the tail or
  every event of a scope leaves a head that does not match. Each append also writes a
  checkpoint line to the ``dds.audit`` log after commit, and ``audit_verify`` prints a
  digest of all heads, so a database wiped together with its heads is still visible from
  outside (compare with ``audit_verify --checkpoint``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditChainHead, AuditEvent
from core import metrics

if TYPE_CHECKING:  # the audit log sits below accounts and projects: types only
    from accounts.models import User
    from projects.models import Project

GENESIS = "0" * 64
_LINK_VERSION = "dds-audit-link-v1"
_HEAD_VERSION = "dds-audit-head-v1"
log = logging.getLogger("dds.audit")


@functools.lru_cache(maxsize=4)
def _key_from(material: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dds-audit-chain-v1").derive(material.encode())


def _audit_key() -> bytes:
    return _key_from(getattr(settings, "DDS_AUDIT_KEY", "") or settings.SECRET_KEY)


def _mac(parts: list[Any]) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(_audit_key(), canonical.encode(), hashlib.sha256).hexdigest()


def scope_for(*, project_public_id: str = "", actor_id: int | None = None) -> str:
    if project_public_id:
        return f"project:{project_public_id}"
    if actor_id:
        return f"user:{actor_id}"
    return "system"


def event_mac(event: AuditEvent) -> str:
    """The link of one event (works on model instances of migrations too)."""
    return _mac([_LINK_VERSION, event.scope, int(event.seq), event.prev_hash,
                 event.actor_username, event.action, event.project_public_id, event.target,
                 event.ip, event.at.isoformat(), event.details])


def head_mac(*, scope: str, count: int, last_hash: str) -> str:
    return _mac([_HEAD_VERSION, scope, int(count), last_hash])


def legacy_chain_check(events: QuerySet[AuditEvent]) -> tuple[bool, int]:
    """Check the pre-keyed chain (plain SHA-256, one global chain) — for the migration."""
    prev, checked = GENESIS, 0
    for event in events.iterator(chunk_size=2000):
        canonical = json.dumps(
            [prev, event.actor_username, event.action, event.project_public_id,
             event.target, event.ip, event.at.isoformat(), event.details],
            sort_keys=True, separators=(",", ":"), default=str)
        if event.prev_hash != prev or hashlib.sha256(canonical.encode()).hexdigest() != event.hash:
            return False, checked
        prev, checked = event.hash, checked + 1
    return True, checked


def _head_locked(scope: str) -> AuditChainHead:
    # INSERT … ON CONFLICT DO NOTHING: two first appenders of a scope never collide.
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(scope=scope, count=0, last_hash=GENESIS,
                        mac=head_mac(scope=scope, count=0, last_hash=GENESIS))],
        ignore_conflicts=True)
    # NO KEY UPDATE: the head's key never changes, and nothing needs KEY SHARE on it.
    return AuditChainHead.objects.select_for_update(no_key=True).get(scope=scope)


@transaction.atomic
def audit_record(*, action: AuditAction | str, actor: User | None = None,
                 project: Project | None = None, target: str = "",
                 ip: str | None = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event. Never put a secret in ``details``: the log is readable by staff.

    Call it last in the transaction (after the domain rows are locked and written, before
    any slow work is *not* needed any more): it takes the scope's head lock, which is held
    until commit. ``action`` must be in the registry (audit.actions.AuditAction).
    """
    action = AuditAction(action)  # ValueError for an action nobody registered
    actor_id = getattr(actor, "pk", None)
    project_public_id = getattr(project, "public_id", "") or ""
    scope = scope_for(project_public_id=project_public_id, actor_id=actor_id)
    head = _head_locked(scope)
    event = AuditEvent(
        actor=actor if actor_id else None,
        actor_username=getattr(actor, "username", "") or "",
        action=action.value,
        project=project,
        project_public_id=project_public_id,
        target=str(target)[:255],
        ip=ip,
        at=timezone.now(),
        details=json.loads(json.dumps(details or {}, default=str)),
        scope=scope,
        seq=head.count + 1,
        prev_hash=head.last_hash,
    )
    event.hash = event_mac(event)
    event.save()
    head.count, head.last_hash = event.seq, event.hash
    head.mac = head_mac(scope=scope, count=head.count, last_hash=head.last_hash)
    head.save(update_fields=["count", "last_hash", "mac"])
    # A checkpoint outside the database: a later wipe of events *and* heads still
    # contradicts the log. Only after commit, so a rolled-back event is never claimed.
    transaction.on_commit(lambda: _checkpoint(scope, event.seq, event.hash))
    return event


def _checkpoint(scope: str, seq: int, last_hash: str) -> None:
    log.info("audit checkpoint scope=%s count=%d last=%s", scope, seq, last_hash)
    metrics.audit_checkpoint(scope=scope, seq=seq)


@dataclass
class AuditVerification:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""
    scopes: int = 0
    digest: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> str:
        return f"events={self.checked},scopes={self.scopes},digest={self.digest}"


def _parse_checkpoint(text: str) -> dict[str, str]:
    parts = dict(p.split("=", 1) for p in text.replace(" ", ",").split(",") if "=" in p)
    if not {"events", "digest"} <= parts.keys():
        raise ValueError("a checkpoint looks like events=N,scopes=M,digest=HEX")
    return parts


def _fail(result: AuditVerification, reason: str, event_id: int | None = None) -> None:
    if result.ok:
        result.ok, result.reason, result.first_bad_id = False, reason, event_id
    result.problems.append(reason)


def audit_verify(*, batch_size: int = 2000, checkpoint: str | None = None,
                 min_events: int = 0) -> AuditVerification:
    """Walk every scope's chain in ``seq`` order, recompute each HMAC and the heads.

    ``checkpoint`` is a line an earlier run printed (kept outside the database: the log,
    a ticket): the chain must still hold at least that many events, and if it holds
    exactly that many, the same heads. ``min_events`` is the same floor alone.
    """
    result = AuditVerification(True, 0)
    digest = hmac.new(_audit_key(), b"dds-audit-heads-v1", hashlib.sha256)
    heads = {h.scope: h for h in AuditChainHead.objects.order_by("scope")}
    for scope, head in heads.items():
        if not hmac.compare_digest(head.mac, head_mac(scope=scope, count=head.count,
                                                       last_hash=head.last_hash)):
            _fail(result, f"head of {scope} is not signed by the audit key (edited head)")
        prev, seq = GENESIS, 0
        for event in (AuditEvent.objects.filter(scope=scope).order_by("seq")
                      .iterator(chunk_size=batch_size)):
            seq += 1
            if event.seq != seq or event.prev_hash != prev:
                _fail(result, f"{scope}: link broken at seq {seq} (row removed, inserted "
                              "or reordered)", event.id)
                break
            if not hmac.compare_digest(event_mac(event), event.hash):
                _fail(result, f"{scope}: content does not match its HMAC at seq {seq} "
                              "(edited, or chained without the audit key)", event.id)
                break
            prev = event.hash
            result.checked += 1
        else:
            if seq != head.count or prev != head.last_hash:
                _fail(result, f"{scope}: head says {head.count} events, the chain has {seq} "
                              "(tail or all events removed)")
        digest.update(f"{scope}:{head.count}:{head.last_hash};".encode())
    orphans = (AuditEvent.objects.exclude(scope__in=list(heads)).order_by("id")
               .values_list("id", flat=True).first())
    if orphans is not None:
        _fail(result, "events without a chain head (head removed or events forged)", orphans)
    result.scopes = len(heads)
    result.digest = digest.hexdigest()[:32]
    total = sum(h.count for h in heads.values())
    floor = min_events
    if checkpoint:
        expected = _parse_checkpoint(checkpoint)
        floor = max(floor, int(expected["events"]))
        if total == int(expected["events"]) and expected["digest"] != result.digest:
            _fail(result, "the heads differ from the checkpoint at the same event count")
    if total < floor:
        _fail(result, f"the log holds {total} events, fewer than the {floor} of the "
                      "checkpoint (events and heads removed)")
    return result
