"""Routes of the local backend's signed object URLs (mounted at /storage/)."""

from django.urls import path

from transfers import storage_views

urlpatterns = [
    path("parts/<str:token>", storage_views.storage_part, name="storage-part"),
    path("objects/<str:token>", storage_views.storage_object, name="storage-object"),
    path("puts/<str:token>", storage_views.storage_put, name="storage-put"),
]
