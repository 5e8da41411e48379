"""Thin Celery tasks over accounts.services and accounts.mail."""

from celery import shared_task

from accounts.mail import MailDeliveryError, mail_deliver
from accounts.services import invites_delete_expired as _invites_delete_expired

#: Back-off of a failed email: 30 s, 1 min, 2 min, … capped at one hour, about a day in all.
MAIL_MAX_RETRIES = 30


@shared_task(name="accounts.tasks.invites_delete_expired")
def invites_delete_expired() -> int:
    return _invites_delete_expired()


@shared_task(name="accounts.tasks.mail_send", bind=True, max_retries=MAIL_MAX_RETRIES)
def mail_send(self, email_id: int) -> bool:
    """Send one queued email (only its id crosses the broker)."""
    try:
        return mail_deliver(email_id=email_id)
    except MailDeliveryError as exc:
        if self.request.is_eager:
            return False  # the embedded default has no worker to retry; the row stays
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2 ** self.request.retries))
