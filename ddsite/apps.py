from typing import Any

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.core.cache import cache
from django.db.models.signals import post_save


class DDSAdminConfig(AdminConfig):
    default_site = "ddsite.admin_site.DDSAdminSite"


class DDSiteConfig(AppConfig):
    """The site itself as an app: its management commands (migrate_locked, run_scheduled)
    and the Celery task that runs scheduled commands (ddsite/tasks.py)."""

    name = "ddsite"
    verbose_name = "DDS site"

    def ready(self) -> None:
        # Models and what imports them load only once the registry is ready (here).
        from accounts.models import Maintenance  # noqa: PLC0415
        from ddsite.middleware import MAINTENANCE_CACHE_KEY  # noqa: PLC0415

        def maintenance_changed(sender: type, instance: Maintenance, **kwargs: Any) -> None:
            # The middleware caches the flag; drop it so the change applies at once.
            cache.delete(MAINTENANCE_CACHE_KEY)

        post_save.connect(maintenance_changed, sender=Maintenance, weak=False,
                          dispatch_uid="ddsite.maintenance_changed")
