"""Researcher portal, mounted at the site root by ddsite/urls.py."""

from django.urls import path

from portal import public, views

app_name = "portal"

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("projects/<str:project_id>/", views.project_detail, name="project"),
    path("projects/<str:project_id>/download/file", views.download_file,
         name="download-file"),
    path("projects/<str:project_id>/download/folder", views.download_folder,
         name="download-folder"),
    path("projects/<str:project_id>/people/invite", views.member_invite, name="member-invite"),
    path("projects/<str:project_id>/people/<str:username>/revoke", views.member_revoke,
         name="member-revoke"),
    path("projects/<str:project_id>/people/<str:username>/owner", views.member_owner,
         name="member-owner"),
    path("projects/<str:project_id>/people/<str:username>/access-fix",
         views.member_access_fix, name="member-access-fix"),
    path("account/sessions/end-others", views.sessions_end_others,
         name="sessions-end-others"),
    # Public pages (no login; portal.public). Keep portal.middleware.PUBLIC_PREFIXES in step.
    path("privacy/", public.privacy, name="privacy"),
    path("troubleshooting/", public.troubleshooting, name="troubleshooting"),
    path("technical/", public.technical, name="technical"),
    path("terms/", public.terms, name="terms"),
]
