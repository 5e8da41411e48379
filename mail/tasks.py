"""The mail task: sends one queued email (only its row id crosses the broker)."""

from celery import shared_task

from mail.services import MailDeliveryError, mail_deliver

#: Back-off of a failed email: 30 s, 1 min, 2 min, … capped at one hour, about a day in all.
MAIL_MAX_RETRIES = 30


@shared_task(name="mail.tasks.mail_send", bind=True, max_retries=MAIL_MAX_RETRIES)
def mail_send(self, email_id: int) -> bool:
    """Send one queued email; retried with back-off while the mail server refuses it."""
    try:
        return mail_deliver(email_id=email_id)
    except MailDeliveryError as exc:
        if self.request.is_eager:
            return False  # the embedded default has no worker to retry; the row stays
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2 ** self.request.retries)) from exc
