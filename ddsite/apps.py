from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class DDSAdminConfig(AdminConfig):
    default_site = "ddsite.admin_site.DDSAdminSite"


class DDSiteConfig(AppConfig):
    """The site itself as an app: its management commands (migrate_locked, run_scheduled)
    and the Celery task that runs scheduled commands (ddsite/tasks.py)."""

    name = "ddsite"
    verbose_name = "DDS site"
