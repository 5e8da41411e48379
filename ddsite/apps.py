from django.contrib.admin.apps import AdminConfig


class DDSAdminConfig(AdminConfig):
    default_site = "ddsite.admin_site.DDSAdminSite"
