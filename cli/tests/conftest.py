"""Fixtures of the client's fast tests: a fake API, a logged-in `dds` in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import config
from cli.main import cli
from cli.tests.fake_api import FakeApi


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and state of this test only (no DDS_* from the environment)."""
    for name in ("DDS_URL", "DDS_STATE_DIR", "DDS_USERNAME", "DDS_PASSWORD", "DDS_2FA_CODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DDS_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


@pytest.fixture
def api(dirs: Path) -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def logged_in(api: FakeApi) -> FakeApi:
    config.save_token({"url": api.url, "username": "alice", "access": "access-token",
                       "refresh": "refresh-token"})
    return api


class Dds:
    """`dds ARGS` in this process (click's CliRunner): stdout, stderr and the exit status
    kept apart; standard input is not a terminal, as in a script."""

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, prog_name="dds",
                                  catch_exceptions=False)


@pytest.fixture
def dds() -> Dds:
    return Dds()
