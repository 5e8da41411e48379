from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from ddsite import health

admin.site.site_header = "DDS administration"
admin.site.site_title = "DDS admin"
admin.site.index_title = "Data Delivery System"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
]
