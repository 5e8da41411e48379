"""Brute-force lockout: failed passwords and codes counted per account name and address.

The counters are rows (``LoginThrottle``) keyed by a hash, so a password typed into the
username field never lands in the database in clear. The *rate* of requests is bounded
separately (core.throttling); this bounds *failures*.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import AccountLocked
from accounts.models import LoginThrottle, User
from audit.actions import AuditAction
from audit.services import audit_record


@dataclass(frozen=True)
class LockoutPolicy:
    account_failures: int
    address_failures: int
    minutes: int

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.minutes)


def lockout_policy() -> LockoutPolicy:
    """The lockout settings, read in this one place."""
    return LockoutPolicy(account_failures=int(settings.DDS_LOCKOUT_FAILURES),
                         address_failures=int(settings.DDS_LOCKOUT_IP_FAILURES),
                         minutes=int(settings.DDS_LOCKOUT_MINUTES))


def _throttle_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def throttle_keys(username: str, ip: str | None) -> list[tuple[str, int, str]]:
    """(counter key, failures that lock, scope) for the account name and the address."""
    policy = lockout_policy()
    return [(_throttle_key("user", (username or "").strip().lower()),
             policy.account_failures, "account"),
            (_throttle_key("ip", ip or "-"), policy.address_failures, "address")]


def _minutes_left(until: datetime) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds() / 60))


def login_lock_check(*, username: str, ip: str | None) -> None:
    """Refuse early while the account (by name, existing or not) or the address is locked."""
    keys = [key for key, _, _ in throttle_keys(username, ip)]
    row = (LoginThrottle.objects.filter(key__in=keys, locked_until__gt=timezone.now())
           .order_by("-locked_until").first())
    if row is not None and row.locked_until is not None:
        raise AccountLocked(_minutes_left(row.locked_until))


def _throttle_row_locked(key: str) -> LoginThrottle:
    """The counter row, created if missing, locked. A successful login deletes the
    account's row, possibly between our insert and our lock: then insert again."""
    while True:
        LoginThrottle.objects.bulk_create([LoginThrottle(key=key)], ignore_conflicts=True)
        row = LoginThrottle.objects.select_for_update(no_key=True).filter(key=key).first()
        if row is not None:
            return row


@transaction.atomic
def login_failure_record(*, username: str, ip: str | None, stage: str,
                         user: User | None = None) -> bool:
    """Count one failed password or code; lock after too many. Returns True if now locked."""
    now = timezone.now()
    policy = lockout_policy()
    locks: list[dict[str, Any]] = []
    # Lock order (docs/locking.md): the throttle rows, in key order, then the audit head
    # last; a successful login (which deletes the account's row) takes them the same way.
    for key, limit, scope in sorted(throttle_keys(username, ip)):
        row = _throttle_row_locked(key)
        if row.window_start + policy.window < now or (row.locked_until
                                                      and row.locked_until <= now):
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= limit and row.locked_until is None:
            row.locked_until = now + policy.window
            locks.append({"scope": scope, "stage": stage, "failures": row.failures,
                          "minutes": policy.minutes})
        row.save()
    target = user.username if user else ""
    audit_record(action=AuditAction.AUTH_FAILURE, actor=user, target=target, ip=ip,
                 details={"stage": stage})
    for details in locks:
        audit_record(action=AuditAction.AUTH_LOCK, actor=user, target=target, ip=ip,
                     details=details)
    return bool(locks)


def login_failure_refuse(*, username: str, ip: str | None, stage: str,
                         user: User | None = None) -> None:
    """Count a failure (:func:`login_failure_record`) and raise ``AccountLocked`` if it
    locked the account or address; the caller then raises its own refusal."""
    if login_failure_record(username=username, ip=ip, stage=stage, user=user):
        raise AccountLocked(lockout_policy().minutes)


def login_failures_clear(*, username: str) -> None:
    """A successful login forgets the account's failures (not the address's)."""
    account_key = throttle_keys(username, None)[0][0]
    LoginThrottle.objects.filter(key=account_key).delete()
