"""API routes of the projects app, mounted under /api/v1/ by ddsite/urls.py."""

urlpatterns: list = []
