from typing import Any

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class DDSAdminConfig(AdminConfig):
    default_site = "ddsite.admin_site.DDSAdminSite"


class DDSiteConfig(AppConfig):
    """The site itself as an app: its management commands (migrate_locked, run_scheduled)
    and the Celery task that runs scheduled commands (ddsite/tasks.py)."""

    name = "ddsite"
    verbose_name = "DDS site"

    def ready(self) -> None:
        from django.core.cache import cache
        from django.db.models.signals import post_save

        from accounts.models import Maintenance
        from ddsite.middleware import MAINTENANCE_CACHE_KEY

        def maintenance_changed(sender: type, instance: Maintenance, **kwargs: Any) -> None:
            # The middleware caches the flag; drop it so the change applies at once.
            cache.delete(MAINTENANCE_CACHE_KEY)

        post_save.connect(maintenance_changed, sender=Maintenance, weak=False,
                          dispatch_uid="ddsite.maintenance_changed")
