"""Paths are checked against their ancestors and within a batch, and names may not hide
characters (issue 13: a file is never also a folder; "report\\u202efdp.exe")."""

from __future__ import annotations

import pytest

from transfers.tests.factories import FileFactory
from transfers.tests.helpers import api_url, start_batch

pytestmark = pytest.mark.django_db


def _start(world, path, size=10):
    return world.client().post(api_url(world.project, "uploads"),
                               {"path": path, "size_original": size}, format="json")


def test_a_path_below_a_file_is_refused(world, local_storage):
    FileFactory(project=world.project, path="leaf.txt", name="leaf.txt", folder="")
    r = _start(world, "leaf.txt/child.txt")
    assert r.status_code == 409 and "leaf.txt is a file" in r.json()["detail"]
    r = _start(world, "leaf.txt/deeper/child.txt")
    assert r.status_code == 409
    assert _start(world, "leafy/child.txt").status_code == 201


def test_a_path_below_an_upload_in_progress_is_refused(world, local_storage):
    assert _start(world, "d").status_code == 201
    r = _start(world, "d/x")
    assert r.status_code == 409 and "being uploaded" in r.json()["detail"]


@pytest.mark.parametrize("order", [["d", "d/x"], ["d/x", "d"]])
def test_one_batch_cannot_make_a_path_both_file_and_folder(world, local_storage, order):
    r = start_batch(world.client(), world.project,
                    [{"path": p, "size_original": 10} for p in order])
    assert r.status_code == 200, r.content
    results = r.json()["uploads"]
    assert results[0]["error"] is None and results[0]["upload"]["path"] == order[0]
    assert results[1]["upload"] is None and results[1]["error"]["status"] == 409, results


@pytest.mark.parametrize("name", ["report\u202efdp.exe", "zero\u200bwidth.txt",
                                  "\ufeffbom.txt", "bell\x07.txt"])
def test_invisible_characters_are_refused_in_names(world, local_storage, name):
    r = _start(world, f"folder/{name}")
    assert r.status_code == 400
    assert "invisible or control characters" in r.json()["detail"]
