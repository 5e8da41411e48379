"""API routes of the reports app, mounted under /api/v1/ by ddsite/urls.py."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
