"""A released project with files, its owner and a plain researcher, all with real keys."""

from __future__ import annotations

import pytest

from accounts.models import Role
from accounts.tests.factories import UnitFactory
from accounts.tests.helpers import PortalClient
from keys.tests.helpers import keyed_user
from portal.tests.helpers import deliver, portal_login
from projects.services import project_create, project_member_add, project_release

FILES = {
    "README.txt": b"Delivery notes\n",
    # 2.7 MB (42 segments, 3 storage reads): damage in a late segment shows only after
    # the download has started.
    "reads/sample1.fastq": b"@r1\nACGT\n+\nIIII\n" * 160000,
    "reads/sample2.fastq": b"@r2\nTTGA\n+\nJJJJ\n" * 300,
    "reads/qc/report.html": b"<html>qc</html>",
}


class Delivery:
    def __init__(self, tmp_path, settings):
        settings.DDS_STORAGE_BACKEND = "local"
        settings.DDS_LOCAL_STORAGE_ROOT = tmp_path / "storage"
        self.unit = UnitFactory()
        self.staff, _, self.staff_kek = keyed_user(Role.UNIT_ADMIN, unit=self.unit)
        keyed_user(Role.UNIT_ADMIN, unit=self.unit)  # projects need two unit admins
        self.project = project_create(unit=self.unit, by=self.staff, title="Mouse genomes",
                                      force=True)
        self.project.refresh_from_db()
        deliver(self.project, self.staff, self.staff_kek, FILES)
        deliver(self.project, self.staff, self.staff_kek,
                {"reads/big.txt": b"compressible line\n" * 40000}, compress=True)
        self.project = project_release(project=self.project, by=self.staff, deadline_days=30)
        self.owner, self.owner_password, _ = keyed_user(Role.RESEARCHER)
        self.researcher, self.researcher_password, _ = keyed_user(Role.RESEARCHER)
        project_member_add(project=self.project, by=self.staff, kek=self.staff_kek,
                           email=self.owner.email, owner=True)
        project_member_add(project=self.project, by=self.staff, kek=self.staff_kek,
                           email=self.researcher.email)

    def client(self, user=None) -> PortalClient:
        user = user or self.owner
        password = {self.owner.pk: self.owner_password,
                    self.researcher.pk: self.researcher_password}[user.pk]
        c = PortalClient()
        portal_login(c, user, password)
        return c


@pytest.fixture
def delivery(db, tmp_path, settings):
    return Delivery(tmp_path, settings)
