"""The client installs alone: `pip install .` into an empty virtualenv gives a `dds` that
works without Django, and delivers a file end to end against the live server.

The virtualenv is built once per test session from a copy of what the wheel is made of
(pyproject.toml, cli/, c4gh/), with the dependencies the package declares, from the
package index — not from this checkout's virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import DDS, Result, e2e  # noqa: F401 - e2e is a fixture
from tests.e2e.journey import deliver_and_get_back, tree
from transfers.tests.conftest import moto_endpoint, s3_storage  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
#: What the wheel is built from (setuptools finds cli and c4gh in it).
SOURCES = ("pyproject.toml", "cli", "c4gh")


@pytest.fixture(scope="session")
def standalone(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtualenv with only `pip install <this package>`."""
    root = tmp_path_factory.mktemp("standalone")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns(
            "__pycache__", "*.pyc")} if (REPO / name).is_dir() else {}))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    pip = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in os.environ.items()
                              if not k.startswith(("PIP_", "PYTHON"))})
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return venv / "bin"


def _clean_env(bin_dir: Path) -> dict[str, str]:
    """The environment without this checkout: no PYTHONPATH, no Django settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DDS_", "PYTHON", "DJANGO_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_holds_the_client_and_the_engine_only(standalone, tmp_path):
    code = ("import importlib.metadata as m, importlib.util as u, json; "
            "files = m.distribution('dds').files; "
            "print(json.dumps({'top': sorted({f.parts[0] for f in files "
            "if f.parts[0] not in ('..',) and not f.parts[0].endswith(('.dist-info', '.pth'))}), "
            "'django': u.find_spec('django') is not None, "
            "'tests': sorted({str(f) for f in files if 'tests' in f.parts}), "
            "'version': m.version('dds')}))")
    r = subprocess.run([standalone / "python", "-c", code], cwd=tmp_path,
                       env=_clean_env(standalone), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["top"] == ["c4gh", "cli"] and got["tests"] == [] and not got["django"]
    r = subprocess.run([standalone / "python", "-c", "import django"], cwd=tmp_path,
                       env=_clean_env(standalone), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "No module named 'django'" in r.stderr
    r = subprocess.run([standalone / "dds", "--version"], cwd=tmp_path,
                       env=_clean_env(standalone), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"dds, version {got['version']}"


@dataclass
class StandaloneDDS(DDS):
    """The e2e runner (tests/e2e/conftest.py), running the standalone virtualenv's `dds`
    outside this checkout instead of `python -m cli` inside it."""

    bin_dir: Path | None = None

    def env(self) -> dict[str, str]:
        assert self.bin_dir is not None
        return {**_clean_env(self.bin_dir), "DDS_CONFIG_DIR": str(self.config),
                "DDS_URL": self.url, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def test_the_standalone_dds_delivers_a_file(e2e, standalone, tmp_path):  # noqa: F811
    staff, researcher = (StandaloneDDS(r.url, r.config, r.user, r.password,
                                       command=(str(standalone / "dds"),), cwd=tmp_path,
                                       bin_dir=standalone)
                         for r in (e2e.staff, e2e.researcher))
    staff.login()
    researcher.login()
    source = tmp_path / "src" / "standalone"
    source.mkdir(parents=True)
    (source / "reads.txt").write_text("@r1\nACGT\n+\nIIII\n" * 10_000)  # compressible
    (source / "random.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # the one-file way

    project = deliver_and_get_back(staff, researcher, source, tmp_path / "out", threads=2)

    r = researcher("data", "ls", "-p", project, "standalone", "--json")
    assert r.code == 0, r.err
    assert sorted(f["name"] for f in json.loads(r.out)["files"]) == ["random.bin", "reads.txt"]
    assert tree(tmp_path / "out" / "standalone") == tree(source)
