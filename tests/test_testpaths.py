"""Every package's tests are collected by the README's test command (``make test`` runs
plain ``pytest``, which only looks in ``testpaths``): a new app's tests directory left
out of the list would never run in CI (reports/tests was, until this test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_tests_directory_is_in_testpaths():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    paths = set(config["tool"]["pytest"]["ini_options"]["testpaths"])
    with_tests = {p.parent.parent.name for p in ROOT.glob("*/tests/test_*.py")}
    with_tests |= {p.parent.name for p in ROOT.glob("*/test_*.py")}
    assert with_tests, "no test files found: the glob is wrong"
    missing = sorted(with_tests - paths)
    assert not missing, f"tests outside pyproject.toml's testpaths (never run): {missing}"
