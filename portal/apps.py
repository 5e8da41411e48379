from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Researcher portal"

    def ready(self) -> None:
        from django.core.cache import cache
        from django.db.models.signals import post_save

        from accounts.models import Maintenance
        from ddsite.middleware import MAINTENANCE_CACHE_KEY

        def maintenance_changed(sender, instance, **kwargs):
            # The middleware caches the flag; drop it so the change applies at once.
            cache.delete(MAINTENANCE_CACHE_KEY)

        post_save.connect(maintenance_changed, sender=Maintenance, weak=False,
                          dispatch_uid="portal.maintenance_changed")
