from django.db import models
from django.utils import timezone


class OutboundEmail(models.Model):
    """An email waiting for the mail task (mail.services).

    Its subject, bodies and recipients are sealed under the server key: login codes and
    invite/reset links are secrets, and the broker only ever carries this row's id.
    The row is deleted once the mail is sent.
    """

    payload_sealed = models.BinaryField(editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        # The table was created by accounts (0004) before the outbox became its own app.
        db_table = "accounts_outboundemail"

    def __str__(self) -> str:
        return f"Outbound email {self.pk} ({self.attempts} attempts)"
