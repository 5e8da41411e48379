"""Key API routes, mounted under /api/v1/."""

from django.urls import path

from keys import api

urlpatterns = [
    path("projects/<str:project_id>/public-key", api.ProjectPublicKey.as_view(),
         name="project-public-key"),
    path("projects/<str:project_id>/key-rotation", api.ProjectKeyRotation.as_view(),
         name="project-key-rotation"),
]
