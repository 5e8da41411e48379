"""The first delivery as a new user makes it (issue 12): what it uploads and checks."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MiB = 1024 * 1024


def tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def journey_folder(root: Path) -> Path:
    """Empty, 1-byte, segment-edge, 30 MiB random and compressible files, nested folders,
    non-ASCII names with spaces."""
    data = root / "first delivery"
    (data / "raw" / "lane 1" / "deep").mkdir(parents=True)
    (data / "Ärende ñ" / "日本 語").mkdir(parents=True)
    (data / "empty.txt").write_bytes(b"")
    (data / "one.byte").write_bytes(b"x")
    (data / "raw" / "seg-65536.bin").write_bytes(os.urandom(65536))
    (data / "raw" / "seg-65537.bin").write_bytes(os.urandom(65537))
    (data / "raw" / "lane 1" / "random 30MiB.bin").write_bytes(os.urandom(30 * MiB))
    text = "".join(f"@read{i}\tACGTTGCA{i % 89}\tsample=ÅÄÖ\n" for i in range(120_000))
    (data / "raw" / "lane 1" / "deep" / "reads log.txt").write_text(text)
    (data / "Ärende ñ" / "résumé final.txt").write_text("Ünïcödé — ok\n" * 500)
    (data / "Ärende ñ" / "日本 語" / "ファイル 1.csv").write_text("a,b\n1,2\n")
    return data


def create_project(staff, *extra: str) -> str:
    r = staff("project", "create", "-t", "First delivery", "-pi", "Prof. P", "--json", *extra)
    assert r.code == 0, r.err
    return json.loads(r.out)["id"]


def deliver_and_get_back(staff, researcher, source: Path, out: Path, threads: int) -> str:
    """put (``threads``), grant, release, and the (logged-in) researcher's get; returns
    the project."""
    project = create_project(staff, "--force")
    r = staff("data", "put", "-p", project, "-s", str(source), "--num-threads",
              str(threads), "--silent")
    n = len(tree(source))
    assert r.code == 0 and f"{n} file(s) uploaded" in r.err, r.err
    r = staff("project", "access", "grant", "-p", project, "-e", researcher.user.email)
    assert r.code == 0, r.err
    r = staff("project", "status", "release", "-p", project, "--deadline", "10")
    assert r.code == 0 and "Available" in r.err, r.err
    r = researcher("data", "get", "-p", project, "--get-all", "-d", str(out),
                   "--num-threads", str(threads), "--silent")
    assert r.code == 0, r.err
    assert tree(out / source.name) == tree(source)
    assert not [p for p in out.rglob("*") if p.name.endswith(".dds-partial")]
    return project
