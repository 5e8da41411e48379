"""The `code` of an error body is the documented one whatever raised it (docs/api-errors.md).

Selectors raise Django's own Http404 / PermissionDenied (``project_get_for_user``); DRF
answers them as its NotFound / PermissionDenied, and the body's code must say so too:
clients (``dds --json``) branch on it.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import UserFactory
from projects.models import ProjectMembership


def _as(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


@pytest.mark.django_db
def test_a_project_one_cannot_see_is_not_found(admin_a, project_b):
    for path in ("/api/v1/projects/nope-00099/files", f"/api/v1/projects/{project_b.public_id}"):
        r = _as(admin_a).get(path)
        assert r.status_code == 404, r.content
        assert r.json()["code"] == "not_found" and "No project" in r.json()["detail"]


@pytest.mark.django_db
def test_a_member_acting_as_staff_is_permission_denied(project_a):
    member = UserFactory(role=Role.RESEARCHER)
    ProjectMembership.objects.create(project=project_a, user=member)
    r = _as(member).post(f"/api/v1/projects/{project_a.public_id}/release", {}, format="json")
    assert r.status_code == 403, r.content
    assert r.json()["code"] == "permission_denied"
    assert r.json()["detail"].startswith("You may not")


@pytest.mark.django_db
def test_a_token_that_is_not_one_says_token_not_valid(client):
    r = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer abc")
    assert r.status_code == 401
    assert set(r.json()) == {"detail", "code"} and r.json()["code"] == "token_not_valid"
    assert "messages" not in r.json() and "abc" not in r.json()["detail"]
