"""Project API routes, mounted under /api/v1/."""

from django.urls import path

from projects import api

P = "projects/<str:project_id>"

urlpatterns = [
    path("projects", api.ProjectListCreate.as_view(), name="project-list"),
    # Before P: a public id is "<unit ref>-<5 digits>", so no project is called "busy".
    path("projects/busy", api.ProjectsBusy.as_view(), name="projects-busy"),
    path(P, api.ProjectDetail.as_view(), name="project-detail"),
    path(f"{P}/status", api.ProjectStatusHistory.as_view(), name="project-status"),
    path(f"{P}/release", api.ProjectRelease.as_view(), name="project-release"),
    path(f"{P}/retract", api.ProjectRetract.as_view(), name="project-retract"),
    path(f"{P}/extend", api.ProjectExtend.as_view(), name="project-extend"),
    path(f"{P}/archive", api.ProjectArchive.as_view(), name="project-archive"),
    path(f"{P}/delete", api.ProjectDelete.as_view(), name="project-delete"),
    path(f"{P}/members", api.ProjectMembers.as_view(), name="project-members"),
    path(f"{P}/members/<str:username>", api.ProjectMember.as_view(), name="project-member"),
    path(f"{P}/access-fix", api.ProjectAccessFix.as_view(), name="project-access-fix"),
]
