"""End-to-end fixtures: the real `dds` command (a subprocess) against pytest-django's live
server, with objects in moto's S3 server, logging in with the code from the test outbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core import mail

from accounts.models import Role
from accounts.tests.factories import UnitFactory
from keys.tests.helpers import keyed_user

# Reused, not copied: the transfers tests' moto server and the settings pointing at it.
from transfers.tests.conftest import (  # noqa: F401
    moto_endpoint,
    s3_region_storage,
    s3_storage,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class DDS:
    """Runs `dds` as one user: own config directory, the live server's URL."""

    url: str
    config: Path
    user: object
    password: str
    #: A server in its own process (tests.e2e.server): codes come from its mail files.
    server: object = None
    #: How `dds` is started, and where (cli/tests/test_standalone.py runs another one).
    command: tuple[str, ...] = (sys.executable, "-m", "cli")
    cwd: Path = REPO

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DDS_")}
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the CLI must not need Django
        env.update(DDS_CONFIG_DIR=str(self.config), DDS_URL=self.url, PYTHONPATH=str(REPO),
                   COLUMNS="200", PYTHONUNBUFFERED="1")
        return env

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen([*self.command, *args], cwd=self.cwd, env=self.env(),
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                **kw)

    def __call__(self, *args: str, timeout: float = 300, cwd: Path | None = None) -> Result:
        r = subprocess.run([*self.command, *args], cwd=cwd or self.cwd,
                           env=self.env(), text=True,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(r.returncode, r.stdout, r.stderr)

    def login(self) -> None:
        """`dds auth login` with the password and then the emailed code on stdin."""
        proc = self.popen("auth", "login", "-u", self.user.username, stdin=subprocess.PIPE)
        before = self.server.mail_count() if self.server else len(mail.outbox)
        proc.stdin.write(self.password + "\n")
        proc.stdin.flush()
        code = (self.server.code_for(self.user.email, before) if self.server
                else wait_for_code(self.user.email, before))
        out, err = proc.communicate(code + "\n", timeout=60)
        assert proc.returncode == 0, err


def wait_for_code(email: str, seen: int, timeout: float = 30) -> str:
    import re

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in mail.outbox[seen:]:
            if email in message.to:
                found = re.search(r"\b(\d{8})\b", message.body)
                if found:
                    return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no login code was emailed to {email}")


@pytest.fixture
def e2e(transactional_db, live_server, s3_storage, tmp_path):  # noqa: F811
    """A unit with staff, a researcher, and a `dds` runner for each."""
    return _world(live_server, tmp_path)


@pytest.fixture
def e2e_region(transactional_db, live_server, s3_region_storage, tmp_path):  # noqa: F811
    """:func:`e2e` with S3 in eu-north-1 (buckets need their LocationConstraint)."""
    return _world(live_server, tmp_path)


def _world(live_server, tmp_path):
    unit = UnitFactory()
    staff, staff_pw, _ = keyed_user(Role.UNIT_ADMIN, unit=unit)
    keyed_user(Role.UNIT_ADMIN, unit=unit)  # projects need two Unit Admins
    researcher, researcher_pw, _ = keyed_user(Role.RESEARCHER)

    class World:
        pass

    world = World()
    world.unit = unit
    world.url = live_server.url
    world.staff = DDS(live_server.url, tmp_path / "staff-config", staff, staff_pw)
    world.researcher = DDS(live_server.url, tmp_path / "researcher-config", researcher,
                           researcher_pw)
    world.tmp = tmp_path
    return world
