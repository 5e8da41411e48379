"""Collecting sources: folders keep their name, links are followed, loops refused."""

from __future__ import annotations

import unicodedata

import pytest

from cli.errors import UsageError
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
    found = collect_sources([str(root), str(tmp_path / "single.bin")], "dest", summary)

    assert sorted((s.remote, s.size) for s in found) == [
        ("dest/run/a/b/x.txt", 1), ("dest/run/a/to-top", 1), ("dest/run/top.txt", 1),
        ("dest/run/é.txt", 1), ("dest/single.bin", 4)]
    assert {name.rsplit("/", 1)[-1]: why for name, why in summary.failed} == {
        "up": "symbolic link loop (points to a parent folder)"}
    assert summary.unusable == {name for name, _ in summary.failed}  # not worth a rerun


def test_sources_that_cannot_be_used(tmp_path):
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "ok.txt").write_text("ok")
    bad = [str(tmp_path / "nope"), str(tmp_path / "loop-a"), str(tmp_path / "dangling")]
    # With a usable source, each fails alone (not worth a rerun) and the rest continues.
    summary = Summary()
    found = collect_sources([str(tmp_path / "ok.txt"), *bad], "", summary)
    assert [s.remote for s in found] == ["ok.txt"]
    assert dict(summary.failed) == {bad[0]: "no such file or directory",
                                    bad[1]: "symbolic link loop",
                                    bad[2]: "broken symbolic link"}
    assert summary.unusable == set(bad)
    # None usable: nothing to upload, a usage error naming them all.
    summary = Summary()
    with pytest.raises(UsageError) as caught:
        collect_sources(bad, "", summary)
    message = caught.value.message
    assert message.startswith("Nothing to upload: ")
    assert f"{bad[0]}: no such file or directory" in message
    assert f"{bad[1]}: symbolic link loop" in message
    assert f"{bad[2]}: broken symbolic link" in message
    assert summary.failed == []
