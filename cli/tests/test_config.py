"""The token file: created 0600, refused when others can read it (no server needed)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli import config
from cli.errors import CliError, Exit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DDS_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_token_is_written_0600_even_with_a_permissive_umask(config_dir):
    import os

    old = os.umask(0)
    try:
        config.save_token({"url": "http://x", "access": "a", "refresh": "r"})
    finally:
        os.umask(old)
    path = config_dir / "token.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert config.load_token()["access"] == "a"


def test_a_token_readable_by_others_is_refused(config_dir):
    config.save_token({"url": "http://x", "access": "a", "refresh": "r"})
    (config_dir / "token.json").chmod(0o644)
    with pytest.raises(CliError, match="readable by other users"):
        config.load_token()


def test_commands_without_login_say_how_to_log_in(config_dir):
    env = {"DDS_CONFIG_DIR": str(config_dir), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "cli", "--url", "http://127.0.0.1:9",
                        "project", "ls"], env=env, cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == Exit.NOT_LOGGED_IN
    assert "dds auth login" in r.stderr


def test_the_client_imports_no_django():
    code = ("import sys, cli.main, cli.put, cli.get; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                       text=True, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
