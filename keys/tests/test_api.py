import pytest

import c4gh
from keys.models import KeyRotationStatus
from projects.tests.helpers import login, make_world


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


@pytest.mark.django_db
def test_public_key_file_loads_in_the_crypt4gh_format(world):
    researcher = login(world, world.researcher)
    response = researcher.get(f"/api/v1/projects/{world.project.public_id}/public-key")
    assert response.status_code == 200
    assert b"BEGIN CRYPT4GH PUBLIC KEY" in response.content
    assert c4gh.load_public_key(response.content) == bytes(world.project.public_key)


@pytest.mark.django_db
def test_unit_admin_rotates_over_the_api(world):
    url = f"/api/v1/projects/{world.project.public_id}/key-rotation"
    old_pk = bytes(world.project.public_key)
    assert login(world, world.staff).post(url).status_code == 403
    assert login(world, world.researcher).post(url).status_code == 403
    admin = login(world, world.admin)
    response = admin.post(url)
    assert response.status_code == 202, response.content
    # Eager Celery (no broker) finished it within the request's commit.
    [row] = admin.get(url).json()
    assert row["status"] == KeyRotationStatus.DONE
    world.project.refresh_from_db()
    assert bytes(world.project.public_key) != old_pk
