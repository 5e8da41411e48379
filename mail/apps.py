from django.apps import AppConfig


class MailConfig(AppConfig):
    """The outbox: every email of the system, sealed, queued in the caller's transaction
    and sent by a Celery task after the commit (mail.services)."""

    name = "mail"
    default_auto_field = "django.db.models.BigAutoField"
