from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: keyed, per-scope hash chains of security-relevant actions
    (audit.services; docs/audit.md)."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
