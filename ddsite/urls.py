from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ddsite import version

# Each app owns its API routes (``<app>/urls.py``), all under /api/v1/.
api_v1: list[URLPattern | URLResolver] = [
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("transfers.urls")),
    path("", include("keys.urls")),
    path("", include("reports.urls")),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
]

urlpatterns = [
    # /healthz and /readyz are answered by ddsite.health.ProbeMiddleware, before host
    # validation (the kubelet sends the pod IP as Host).
    # Public: the package version and nothing else (ddsite.version). Outside /api/v1/ so
    # that a client of any API version can ask it.
    path("version", version.version, name="version"),
    # The admin has no login of its own: staff log in through the portal, with a second
    # factor, and come back (?next= is kept).
    path("admin/login/", RedirectView.as_view(pattern_name="accounts:login", query_string=True),
         name="admin-login-redirect"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Swagger UI over /api/v1/schema, from the sidecar's static files (no CDN). The split
    # view serves its init script as a separate file (?script), so the strict CSP holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", template_name="api_docs/swagger_ui.html",
        title="DDS API"), name="api-docs"),
    path("accounts/", include("accounts.portal_urls")),
    # The local storage backend's signed, expiring object URLs (not part of the API).
    path("storage/", include("transfers.storage_urls")),
    # The researcher portal: "/" is the project list.
    path("", include("portal.urls")),
]

# Error pages in the site's style (JSON under /api/).
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
