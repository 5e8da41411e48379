"""Real storage for the transfer tests: moto's S3 server over HTTP, and the local backend
served by Django's live server. Clients talk to both with plain HTTP (httpx)."""

from __future__ import annotations

import pytest
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import UnitFactory
from keys.tests.helpers import keyed_user
from projects.services import project_create
from tests.net import free_port
from transfers import api


@pytest.fixture(scope="session")
def moto_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


#: A region other than S3's default: buckets there need a LocationConstraint.
S3_OTHER_REGION = "eu-north-1"


def _s3_settings(settings, endpoint: str, region: str) -> None:
    settings.DDS_STORAGE_BACKEND = "s3"
    settings.AWS_S3_ENDPOINT_URL = endpoint
    settings.AWS_S3_REGION_NAME = region
    settings.AWS_ACCESS_KEY_ID = "testing-key-id"
    settings.AWS_SECRET_ACCESS_KEY = "testing-secret"


@pytest.fixture
def s3_storage(settings, moto_endpoint):
    _s3_settings(settings, moto_endpoint, "us-east-1")
    return "s3"


@pytest.fixture
def s3_region_storage(settings, moto_endpoint):
    """S3 in eu-north-1 (moto refuses a bucket there without its LocationConstraint)."""
    _s3_settings(settings, moto_endpoint, S3_OTHER_REGION)
    return "s3"


@pytest.fixture
def local_storage(settings, tmp_path, live_server):
    settings.DDS_STORAGE_BACKEND = "local"
    settings.DDS_LOCAL_STORAGE_ROOT = tmp_path / "storage"
    settings.DDS_LOCAL_STORAGE_URL = live_server.url
    return "local"


@pytest.fixture(params=["s3", "s3_region", "local"])
def storage(request):
    """Run a test against both backends (S3 in its default and in another region)."""
    return request.getfixturevalue(f"{request.param}_storage")


class World:
    """A unit with keyed staff, a project with a real key pair, and API clients."""

    def __init__(self, monkeypatch):
        self.unit = UnitFactory()
        self.staff, _, self.staff_kek = keyed_user(Role.UNIT_ADMIN, unit=self.unit)
        self.other_staff, _, self.other_kek = keyed_user(Role.UNIT_PERSONNEL, unit=self.unit)
        # Projects need two Unit Admins (projects.services.unit_admin_check).
        self.admin2, _, self.admin2_kek = keyed_user(Role.UNIT_ADMIN, unit=self.unit)
        self.project = project_create(unit=self.unit, by=self.staff, title="Delivery",
                                      force=True)
        self.project.refresh_from_db()
        self.keks = {self.staff.pk: self.staff_kek, self.other_staff.pk: self.other_kek}
        # The KEK normally comes from the caller's key session (accounts.sessions); the
        # tests hand in the one derived from the password instead.
        monkeypatch.setattr(api, "request_kek", lambda request: self.keks[request.user.pk])

    def client(self, user=None) -> APIClient:
        c = APIClient()
        c.force_authenticate(user or self.staff)
        return c

    def add_keyed(self, user, kek):
        self.keks[user.pk] = kek


@pytest.fixture
def world(db, monkeypatch):
    return World(monkeypatch)
