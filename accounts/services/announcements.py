"""Announcements: messages of the day (MOTD) and maintenance mode.

Only the Super Admin writes them (:func:`accounts.selectors.is_operator`, the one rule
the API's permission class and the admin also use). Everyone sees the active messages:
at the top of ``dds`` output once per login session, and on every portal page.

Maintenance mode is read on every request (ddsite.middleware), so its state is cached
under :data:`MAINTENANCE_CACHE_KEY`; :func:`maintenance_set` writes the new state to the
cache as soon as its transaction commits, so the switch applies at once in every process
that shares the cache (the timeout bounds staleness for those that do not).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import MOTD, Maintenance, Unit, User
from accounts.selectors import is_operator, unit_find
from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import BadInput, NotAllowed, NotFound
from core.input_guard import has_control_character
from mail.services import mail_queue, mail_render

log = logging.getLogger(__name__)

#: Longest message of the day: a few sentences, shown above command output and mailed.
MOTD_MAX_LENGTH = 1000
#: Longest maintenance message (shown in every refusal while maintenance is on).
MAINTENANCE_MESSAGE_MAX_LENGTH = 500
MAINTENANCE_DEFAULT_MESSAGE = "The system is under maintenance."

MAINTENANCE_CACHE_KEY = "dds:maintenance"
MAINTENANCE_CACHE_SECONDS = 30

#: Recipients are read from the database this many at a time, so that mailing every user
#: of a large site does not hold them all in memory.
SEND_CHUNK = 500

MOTD_TEMPLATE = "accounts/motd"


class MaintenanceFlag(TypedDict):
    on: bool
    message: str


@dataclass(frozen=True)
class MaintenanceState:
    active: bool
    message: str
    #: When it was last switched; None if maintenance mode was never switched on.
    changed_at: datetime | None


def _require_operator(by: User) -> None:
    if not is_operator(by):
        raise NotAllowed("Only a Super Admin can manage announcements and maintenance mode.")


def _clean_text(value: str | None, *, what: str, max_length: int, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise BadInput(f"The {what} is empty: write the text to show.")
    if len(text) > max_length:
        raise BadInput(f"The {what} is {len(text)} characters long; at most {max_length} "
                       "are allowed.")
    if has_control_character(text.replace("\n", "").replace("\t", "")):
        raise BadInput(f"The {what} contains a control character.")
    return text


def motd_message_clean(message: str | None) -> str:
    """A message of the day as it will be stored, or BadInput (empty, too long, ...)."""
    return _clean_text(message, what="message", max_length=MOTD_MAX_LENGTH, required=True)


def maintenance_message_clean(message: str | None) -> str:
    """A maintenance message as it will be stored ("" for none), or BadInput."""
    return _clean_text(message, what="maintenance message",
                       max_length=MAINTENANCE_MESSAGE_MAX_LENGTH, required=False)


# --------------------------------------------------------------------------- MOTD


def motd_list(*, active_only: bool = True) -> QuerySet[MOTD]:
    """Messages of the day, newest first; only the active ones unless told otherwise."""
    qs = MOTD.objects.order_by("-created_at", "-pk")
    return qs.filter(is_active=True) if active_only else qs


@transaction.atomic
def motd_add(*, by: User, message: str, ip: str | None = None) -> MOTD:
    """A new active message of the day."""
    _require_operator(by)
    text = motd_message_clean(message)
    motd = MOTD.objects.create(message=text, is_active=True)
    audit_record(action=AuditAction.MOTD_ADD, actor=by, target=str(motd.pk), ip=ip,
                 details={"motd": motd.pk, "length": len(text)})
    return motd


def _motd_locked(motd_id: int) -> MOTD:
    motd = MOTD.objects.select_for_update().filter(pk=motd_id).first()
    if motd is None:
        raise NotFound(f"There is no message of the day with id {motd_id}.")
    return motd


@transaction.atomic
def motd_deactivate(*, by: User, motd_id: int, ip: str | None = None) -> MOTD:
    """Stop showing a message (idempotent: an inactive one stays so, audited once)."""
    _require_operator(by)
    motd = _motd_locked(motd_id)
    if motd.is_active:
        motd.is_active = False
        motd.save(update_fields=["is_active"])
        audit_record(action=AuditAction.MOTD_DEACTIVATE, actor=by, target=str(motd.pk),
                     ip=ip, details={"motd": motd.pk})
    return motd


@transaction.atomic
def motd_save(*, by: User, motd: MOTD, ip: str | None = None) -> MOTD:
    """The admin's form: a new message is added, an edited one keeps its id; switching
    ``is_active`` off deactivates it. Same validation and audit as the API."""
    _require_operator(by)
    if motd.pk is None:
        added = motd_add(by=by, message=motd.message, ip=ip)
        if not motd.is_active:
            motd_deactivate(by=by, motd_id=added.pk, ip=ip)
            added.refresh_from_db()
        return added
    current = _motd_locked(motd.pk)
    text = motd_message_clean(motd.message)
    if text != current.message or motd.is_active != current.is_active:
        was_active = current.is_active
        current.message, current.is_active = text, motd.is_active
        current.save(update_fields=["message", "is_active"])
        if was_active and not motd.is_active:
            action = AuditAction.MOTD_DEACTIVATE
        else:
            action = AuditAction.MOTD_ADD  # a changed or re-activated message is a new one
        audit_record(action=action, actor=by, target=str(current.pk), ip=ip,
                     details={"motd": current.pk, "length": len(text), "edited": True})
    return current


def motd_recipients(*, unit: Unit | None = None) -> QuerySet[User]:
    """Active users with an address: everyone, or a unit's staff and the members of its
    projects (reached through memberships, so accounts does not import projects)."""
    qs = User.objects.filter(is_active=True).exclude(email="")
    if unit is not None:
        qs = qs.filter(Q(unit=unit) | Q(memberships__project__unit=unit))
    return qs.order_by("pk").distinct()


def _addresses(qs: QuerySet[User]) -> Iterator[str]:
    # Addresses are unique (case-insensitively, user_email_unique_ci): one email each.
    yield from qs.values_list("email", flat=True).iterator(chunk_size=SEND_CHUNK)


@transaction.atomic
def motd_send(*, by: User, motd_id: int, unit: str | None = None,
              ip: str | None = None) -> int:
    """Email a message to every active user, or to one unit's staff and the researchers
    of its projects. One email per recipient, so nobody learns anyone else's address;
    all are queued in this transaction (none if it fails). Returns how many were queued."""
    _require_operator(by)
    motd = _motd_locked(motd_id)
    target = unit_find(unit) if unit else None
    # One rendering for all: the email names no recipient.
    subject, body, html = mail_render(MOTD_TEMPLATE, {"motd": motd, "unit": target})
    count = 0
    for address in _addresses(motd_recipients(unit=target)):
        if mail_queue(subject=subject, body=body, html=html, to=[address]) is not None:
            count += 1
    audit_record(action=AuditAction.MOTD_SEND, actor=by, target=str(motd.pk), ip=ip,
                 details={"motd": motd.pk, "unit": target.name if target else None,
                          "recipients": count})
    return count


# --------------------------------------------------------------------------- maintenance


def _flag_of(row: Maintenance | None) -> MaintenanceFlag:
    active = row is not None and row.is_active
    return {"on": active, "message": (row.message if row is not None and active else "")}


def _cache_put(flag: MaintenanceFlag) -> None:
    try:
        cache.set(MAINTENANCE_CACHE_KEY, flag, MAINTENANCE_CACHE_SECONDS)
    except Exception:  # noqa: BLE001 - a cache outage must not fail the request
        log.debug("cache unavailable: maintenance flag not cached")


def maintenance_flag() -> MaintenanceFlag:
    """The cached maintenance state (one cache read per request; the database on a miss)."""
    try:
        cached = cache.get(MAINTENANCE_CACHE_KEY)
    except Exception:  # noqa: BLE001 - a cache outage must not fail every request
        log.warning("cache unavailable: reading the maintenance flag from the database")
        cached = None
    if isinstance(cached, dict) and "on" in cached:
        return {"on": bool(cached["on"]), "message": str(cached.get("message") or "")}
    flag = _flag_of(Maintenance.objects.filter(pk=1).only("is_active", "message").first())
    _cache_put(flag)
    return flag


def maintenance_message() -> str | None:
    """The message to refuse requests with while maintenance is on, else None."""
    flag = maintenance_flag()
    return (flag["message"] or MAINTENANCE_DEFAULT_MESSAGE) if flag["on"] else None


def maintenance_status() -> MaintenanceState:
    """The current state, from the database (not the cache). No row: never switched on,
    so no change time (``changed_at`` None, not "now")."""
    row = Maintenance.objects.filter(pk=1).first()
    if row is None:
        return MaintenanceState(active=False, message="", changed_at=None)
    return MaintenanceState(active=row.is_active,
                            message=row.message if row.is_active else "",
                            changed_at=row.changed_at)


@transaction.atomic
def maintenance_set(*, by: User, on: bool, message: str | None = None,
                    ip: str | None = None) -> MaintenanceState:
    """Switch maintenance mode on (with a message for everyone refused) or off.

    While it is on only the Super Admin uses the system. Switching to the state it is
    already in changes nothing and is not audited, unless a new message is given.
    """
    _require_operator(by)
    text = maintenance_message_clean(message)
    if not on and not Maintenance.objects.filter(pk=1).exists():
        # Never switched on: off already, and no row (so no change time) is made.
        return MaintenanceState(active=False, message="", changed_at=None)
    Maintenance.objects.get_or_create(pk=1, defaults={"is_active": False})
    row = Maintenance.objects.select_for_update().get(pk=1)
    new_message = (text or MAINTENANCE_DEFAULT_MESSAGE) if on else row.message
    changed = row.is_active != on or (on and message is not None
                                      and new_message != row.message)
    if changed:
        row.is_active, row.message, row.changed_at = on, new_message, timezone.now()
        row.save(update_fields=["is_active", "message", "changed_at"])
        audit_record(action=AuditAction.MAINTENANCE_ON if on else AuditAction.MAINTENANCE_OFF,
                     actor=by, target="maintenance", ip=ip,
                     details={"message": new_message} if on else {})
    flag = _flag_of(row)
    # After the commit: a request between our write and the commit must not cache the old
    # state again for MAINTENANCE_CACHE_SECONDS (the post_save hook only deletes the key).
    transaction.on_commit(lambda: _cache_put(flag))
    return MaintenanceState(active=row.is_active, message=flag["message"],
                            changed_at=row.changed_at)
