"""API routes of the reports app, mounted under /api/v1/ by ddsite/urls.py."""

from django.urls import URLPattern, path

from reports.api import StatsApi, UsageApi

urlpatterns: list[URLPattern] = [
    path("usage", UsageApi.as_view(), name="usage"),
    path("stats", StatsApi.as_view(), name="stats"),
]
