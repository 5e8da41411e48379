"""API routes of the keys app, mounted under /api/v1/ by ddsite/urls.py."""

urlpatterns: list = []
