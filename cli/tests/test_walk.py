"""Collecting sources: folders keep their name, links are followed, loops refused."""

from __future__ import annotations

import unicodedata

from cli.put import collect_sources
from cli.transfer import Summary


def test_folders_files_links_and_loops(tmp_path):
    root = tmp_path / "run"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "x.txt").write_text("x")
    (root / "top.txt").write_text("t")
    (root / "a" / "to-top").symlink_to(root / "top.txt")
    (root / "a" / "b" / "up").symlink_to(root / "a")
    nfd = unicodedata.normalize("NFD", "é.txt")
    (root / nfd).write_text("e")
    (tmp_path / "single.bin").write_bytes(b"1234")

    summary = Summary()
    found = collect_sources([str(root), str(tmp_path / "single.bin"),
                             str(tmp_path / "nope")], "dest", summary)

    assert sorted((s.remote, s.size) for s in found) == [
        ("dest/run/a/b/x.txt", 1), ("dest/run/a/to-top", 1), ("dest/run/top.txt", 1),
        ("dest/run/é.txt", 1), ("dest/single.bin", 4)]
    assert {name.rsplit("/", 1)[-1]: why for name, why in summary.failed} == {
        "up": "symbolic link loop (points to a parent folder)",
        "nope": "no such file or directory"}
