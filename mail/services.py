"""Outgoing email: queued inside the caller's transaction, sent by a Celery task after it.

Every email of the system goes through :func:`mail_queue`:

- nothing is sent for a write that rolls back, and nothing is lost when the mail server
  is down (the row stays and the task retries with back-off);
- the request never waits for SMTP, so a password-reset request answers in the same time
  whether or not the address has an account;
- login codes and invite/reset links are secrets: the queued row is sealed under the
  server key and the broker carries only its id (security model point 6).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import transaction
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from core.dispatch import after_commit, enqueue
from core.sealing import seal, unseal
from mail.models import OutboundEmail

log = logging.getLogger(__name__)

_PURPOSE = "outbound-email"


class MailDeliveryError(Exception):
    """The mail server refused or could not be reached; the email stays queued."""


MAIL_TASK = "mail.tasks.mail_send"

#: A text attachment: (file name, content, MIME type), e.g. a monthly usage CSV. It is
#: sealed with the rest of the email.
Attachment = tuple[str, str, str]


def mail_queue(*, subject: str, body: str, to: Iterable[str],
               html: str | None = None,
               attachments: Sequence[Attachment] = ()) -> OutboundEmail | None:
    """Queue one email (to every address in ``to``); it is sent after the commit.
    Prefer :func:`mail_send_template`: the words of an email live in its templates."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return None
    message: dict[str, Any] = {"subject": subject, "body": body, "to": recipients}
    if html:
        message["html"] = html
    if attachments:
        message["attachments"] = [[name, content, mimetype]
                                  for name, content, mimetype in attachments]
    row = OutboundEmail.objects.create(
        payload_sealed=seal(json.dumps(message).encode(), purpose=_PURPOSE))
    # robust: with the broker down the row stays and mail_flush queues it again.
    after_commit(MAIL_TASK, row.pk, robust=True)
    return row


def mail_render(template: str, context: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(subject, text body, HTML body or None) of ``mail/<template>``: the templates
    ``<template>.subject.txt`` (one line), ``<template>.txt`` and, where it helps,
    ``<template>.html``. ``site_name`` and ``site_url`` are always in the context."""
    ctx = {"site_name": "DDS", "site_url": settings.DDS_PUBLIC_URL.rstrip("/"), **context}
    subject = " ".join(render_to_string(f"mail/{template}.subject.txt", ctx).split())
    body = render_to_string(f"mail/{template}.txt", ctx).strip() + "\n"
    try:
        html: str | None = render_to_string(f"mail/{template}.html", ctx)
    except TemplateDoesNotExist:
        html = None
    return subject, body, html


def mail_send_template(*, template: str, context: Mapping[str, Any],
                       to: Iterable[str],
                       attachments: Sequence[Attachment] = ()) -> OutboundEmail | None:
    """Render ``mail/<template>`` (see :func:`mail_render`) and queue it to ``to``."""
    subject, body, html = mail_render(template, context)
    return mail_queue(subject=subject, body=body, html=html, to=to,
                      attachments=attachments)


def _send(payload: dict[str, Any]) -> None:
    if not payload.get("attachments"):
        send_mail(payload["subject"], payload["body"], None, payload["to"],
                  html_message=payload.get("html"))
        return
    message = EmailMultiAlternatives(payload["subject"], payload["body"], None,
                                     payload["to"])
    if payload.get("html"):
        message.attach_alternative(payload["html"], "text/html")
    for name, content, mimetype in payload["attachments"]:
        message.attach(name, content, mimetype)
    message.send()


def mail_deliver(*, email_id: int) -> bool:
    """Send a queued email and delete it. False if it is gone (sent) or being sent.

    The row lock (skipping locked rows) makes a duplicate task a no-op, so an email is
    sent once even when the broker delivers the task twice.
    """
    failure: Exception | None = None
    with transaction.atomic():
        row = (OutboundEmail.objects.select_for_update(skip_locked=True)
               .filter(pk=email_id).first())
        if row is None:
            return False
        payload = json.loads(unseal(bytes(row.payload_sealed), purpose=_PURPOSE))
        try:
            _send(payload)
        except Exception as exc:  # noqa: BLE001 - any transport failure: keep it queued
            failure = exc
            row.attempts += 1
            row.last_error = type(exc).__name__[:200]
            row.save(update_fields=["attempts", "last_error"])
        else:
            row.delete()
    if failure is not None:
        # The type only: an SMTP error can quote the message, which may hold a secret.
        log.warning("email %s not sent (attempt %s): %s", email_id, row.attempts,
                    type(failure).__name__)
        raise MailDeliveryError(type(failure).__name__) from failure
    return True


#: A queued email is re-dispatched if it is still here after this long (its task was lost:
#: the broker was down at commit, or the worker died), and dropped after the longest life
#: of any link it can hold (invites: DDS_INVITE_DAYS), so no sealed secret stays forever.
MAIL_REDISPATCH_AFTER = timedelta(minutes=5)


def mail_flush(*, now: datetime | None = None) -> tuple[int, int]:
    """Re-queue emails whose task was lost; drop those older than any link they carry.
    Returns (re-queued, dropped). Safe to run beside the worker: delivery locks the row,
    so a re-queued email is still sent once."""
    now = now or timezone.now()
    too_old = now - timedelta(days=max(1, settings.DDS_INVITE_DAYS))
    dropped = OutboundEmail.objects.filter(created_at__lt=too_old).delete()[0]
    if dropped:
        log.error("dropped %d email(s) that could not be sent for %d days", dropped,
                  max(1, settings.DDS_INVITE_DAYS))
    stuck = list(OutboundEmail.objects.filter(created_at__lt=now - MAIL_REDISPATCH_AFTER)
                 .values_list("pk", flat=True)[:1000])
    for email_id in stuck:
        enqueue(MAIL_TASK, email_id)
    return len(stuck), dropped
