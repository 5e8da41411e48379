"""The local backend's multipart layout (issue #19): parts written into one data file at
their offsets with a sidecar each, a complete that renames instead of copying, crash
safety, the layout before (a file per part) still completing, and the single PUT."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time

import httpx
import pytest

from transfers.errors import StorageRejected, StorageUnavailable
from transfers.models import Upload, UploadStatus
from transfers.storage import LocalBackend
from transfers.storage import local as local_module

PART = 64 * 1024


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parts(data: bytes, size: int = PART) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def _upload(backend: LocalBackend, bucket: str, key: str, data: bytes,
            part_size: int | None = PART) -> tuple[str, list[tuple[int, str]]]:
    backend.create_bucket(bucket)
    upload_id = backend.start_multipart(bucket, key)
    etags = [(n, backend.write_part(bucket, upload_id, n, [chunk], part_size=part_size))
             for n, chunk in enumerate(_parts(data), start=1)]
    return upload_id, etags


@pytest.fixture
def backend(tmp_path) -> LocalBackend:
    return LocalBackend(root=tmp_path / "storage")


def test_parts_are_listed_from_their_sidecars_without_reading_data(backend, monkeypatch):
    data = os.urandom(3 * PART + 123)
    upload_id, etags = _upload(backend, "b", "k", data)
    assert etags == [(n, _md5(c)) for n, c in enumerate(_parts(data), start=1)]

    def no_hashing(*args, **kwargs):
        raise AssertionError("list_parts hashed a part")

    monkeypatch.setattr(local_module.hashlib, "file_digest", no_hashing)
    listed = backend.list_parts("b", "k", upload_id)
    assert [(p.number, p.etag, p.size) for p in listed] == [
        (n, _md5(c), len(c)) for n, c in enumerate(_parts(data), start=1)]


def test_complete_renames_the_data_file_into_the_object(backend, monkeypatch):
    data = os.urandom(5 * PART + 7)
    upload_id, etags = _upload(backend, "b", "k", data)
    data_file = backend._mp_dir("b", upload_id) / "data"
    inode = data_file.stat().st_ino
    monkeypatch.setattr(local_module, "_copy_range", None)  # a copy would fail
    backend.complete_multipart("b", "k", upload_id, etags)
    path = backend.object_path("b", "k")
    assert path.stat().st_ino == inode  # the same file: nothing was copied
    assert path.read_bytes() == data
    assert backend.head_size("b", "k") == len(data)
    assert not backend._mp_dir("b", upload_id).exists()
    with pytest.raises(StorageRejected) as exc:
        backend.list_parts("b", "k", upload_id)
    assert exc.value.details["storage_code"] == "NoSuchUpload"
    # Reconciliation sees one object of the right size and no open upload.
    assert [(o.key, o.size) for o in backend.iter_objects("b")] == [("k", len(data))]
    assert list(backend.iter_multipart("b")) == []


def test_parts_sent_out_of_order_and_in_parallel_positions(backend):
    data = os.urandom(4 * PART + 1000)
    chunks = _parts(data)
    backend.create_bucket("b")
    upload_id = backend.start_multipart("b", "k")
    etags = {}
    for n in (5, 2, 4, 1, 3):
        etags[n] = backend.write_part("b", upload_id, n, [chunks[n - 1]], part_size=PART)
    backend.complete_multipart("b", "k", upload_id, sorted(etags.items()))
    assert backend.object_path("b", "k").read_bytes() == data


def test_parts_not_named_are_cut_off(backend):
    data = os.urandom(3 * PART)
    upload_id, etags = _upload(backend, "b", "k", data + os.urandom(PART))
    backend.complete_multipart("b", "k", upload_id, etags[:3])
    assert backend.object_path("b", "k").read_bytes() == data


def test_a_part_rewritten_before_complete_wins(backend):
    data = os.urandom(3 * PART)
    upload_id, etags = _upload(backend, "b", "k", data)
    other = os.urandom(PART)
    new = backend.write_part("b", upload_id, 2, [other[:100], other[100:]], part_size=PART)
    assert new == _md5(other)
    assert {p.number: p.etag for p in backend.list_parts("b", "k", upload_id)}[2] == new
    with pytest.raises(StorageRejected):  # the ETag of the replaced part is refused
        backend.complete_multipart("b", "k", upload_id, etags)
    backend.complete_multipart("b", "k", upload_id, [etags[0], (2, new), etags[2]])
    assert backend.object_path("b", "k").read_bytes() == data[:PART] + other + data[2 * PART:]


def test_a_broken_rewrite_leaves_the_part_not_stored(backend):
    data = os.urandom(2 * PART)
    upload_id, etags = _upload(backend, "b", "k", data)

    def broken():
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(StorageUnavailable):  # (a client gone is an OSError)
        backend.write_part("b", upload_id, 2, broken(), part_size=PART)
    # Half of it is in the data file, so the part is not listed: the client resends it.
    assert [p.number for p in backend.list_parts("b", "k", upload_id)] == [1]
    with pytest.raises(StorageRejected):
        backend.complete_multipart("b", "k", upload_id, etags)
    again = backend.write_part("b", upload_id, 2, [data[PART:]], part_size=PART)
    backend.complete_multipart("b", "k", upload_id, [etags[0], (2, again)])
    assert backend.object_path("b", "k").read_bytes() == data


def test_a_complete_that_crashes_before_the_rename_leaves_the_upload(backend, monkeypatch):
    data = os.urandom(4 * PART)
    upload_id, etags = _upload(backend, "b", "k", data + os.urandom(5))
    real = os.replace

    def crash(src, dst):
        if str(src).endswith("/data"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(local_module.os, "replace", crash)
    with pytest.raises(StorageUnavailable):
        backend.complete_multipart("b", "k", upload_id, etags[:4])
    assert backend.head_size("b", "k") is None  # no object, not half of one
    # The parts named are still there (the one not named is forgotten with its bytes).
    assert [p.number for p in backend.list_parts("b", "k", upload_id)] == [1, 2, 3, 4]
    monkeypatch.setattr(local_module.os, "replace", real)
    backend.complete_multipart("b", "k", upload_id, etags[:4])
    assert backend.object_path("b", "k").read_bytes() == data


def test_a_complete_that_crashes_after_the_rename_leaves_the_object(backend, monkeypatch):
    data = os.urandom(2 * PART + 5)
    upload_id, etags = _upload(backend, "b", "k", data)
    monkeypatch.setattr(local_module.shutil, "rmtree", lambda *a, **k: None)
    backend.complete_multipart("b", "k", upload_id, etags)
    monkeypatch.undo()
    assert backend._mp_dir("b", upload_id).is_dir()  # the crash left the directory
    # The upload is gone for storage (the services' retry then checks the object) ...
    with pytest.raises(StorageRejected) as exc:
        backend.list_parts("b", "k", upload_id)
    assert exc.value.details["storage_code"] == "NoSuchUpload"
    assert not backend._mp_dir("b", upload_id).exists()  # ... and cleaned up
    assert backend.object_path("b", "k").read_bytes() == data
    with pytest.raises(StorageRejected):
        backend.write_part("b", upload_id, 1, [b"late"], part_size=PART)
    assert backend.object_path("b", "k").read_bytes() == data


def test_an_upload_of_the_layout_before_still_completes(backend):
    """An upload started before this layout: a file per part, no sidecars, no data file."""
    data = os.urandom(3 * PART + 11)
    backend.create_bucket("b")
    upload_id = backend.start_multipart("b", "k")
    directory = backend._mp_dir("b", upload_id)
    (directory / "data").unlink()
    (directory / ".lock").unlink()
    chunks = _parts(data)
    for n, chunk in enumerate(chunks[:2], start=1):  # written by the code before
        (directory / f"{n:05d}").write_bytes(chunk)
    # The parts sent after the change (part URLs carry the part size) keep that layout.
    etags = [(n, backend.write_part("b", upload_id, n, [c], part_size=PART))
             for n, c in enumerate(chunks[2:], start=3)]
    assert not (directory / "data").exists()
    listed = backend.list_parts("b", "k", upload_id)
    assert [(p.number, p.etag, p.size) for p in listed] == [
        (n, _md5(c), len(c)) for n, c in enumerate(chunks, start=1)]
    parts = [(p.number, p.etag) for p in listed]
    assert etags == parts[2:]
    backend.complete_multipart("b", "k", upload_id, parts)
    assert backend.object_path("b", "k").read_bytes() == data
    assert not directory.exists()
    assert [o.key for o in backend.iter_objects("b")] == ["k"]  # no .assembling left


def test_parts_in_files_of_their_own_and_in_the_data_file_mix(backend):
    data = os.urandom(3 * PART + 1)
    chunks = _parts(data)
    backend.create_bucket("b")
    upload_id = backend.start_multipart("b", "k")
    etags = [(1, backend.write_part("b", upload_id, 1, [chunks[0]], part_size=PART)),
             (2, backend.write_part("b", upload_id, 2, [chunks[1]])),  # no part size
             (3, backend.write_part("b", upload_id, 3, [chunks[2]], part_size=PART)),
             (4, backend.write_part("b", upload_id, 4, [chunks[3]]))]
    backend.complete_multipart("b", "k", upload_id, etags)
    assert backend.object_path("b", "k").read_bytes() == data


def test_a_complete_waits_for_a_part_being_written(backend, monkeypatch):
    upload_id, etags = _upload(backend, "b", "k", b"abc")
    monkeypatch.setattr(local_module, "_COMPLETE_WAIT", 0.2)
    fd = os.open(backend._mp_dir("b", upload_id) / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as a part request does while it writes
        with pytest.raises(StorageUnavailable, match="still being written"):
            backend.complete_multipart("b", "k", upload_id, etags)
    finally:
        os.close(fd)
    backend.complete_multipart("b", "k", upload_id, etags)
    assert backend.object_path("b", "k").read_bytes() == b"abc"


def test_an_empty_upload(backend):
    upload_id, etags = _upload(backend, "b", "k", b"")
    backend.complete_multipart("b", "k", upload_id, etags)
    assert backend.object_path("b", "k").read_bytes() == b""


def test_abort_removes_the_parts(backend):
    upload_id, _ = _upload(backend, "b", "k", os.urandom(2 * PART))
    backend.abort_multipart("b", "k", upload_id)
    assert not backend._mp_dir("b", upload_id).exists()
    backend.delete_bucket("b")  # empty again


# ------------------------------------------------------------------ over HTTP


@pytest.mark.django_db(transaction=True)
def test_multipart_over_http_then_get_whole_and_by_range(local_storage):
    backend = LocalBackend()
    backend.create_bucket("web")
    data = os.urandom(3 * PART + 999)
    upload_id = backend.start_multipart("web", "obj")
    etags = []
    for n, chunk in reversed(list(enumerate(_parts(data), start=1))):
        url = backend.presign_part("web", "obj", upload_id, n, 60, max_bytes=PART)
        r = httpx.put(url, content=chunk)
        assert r.status_code == 200, r.text
        etags.append((n, r.headers["ETag"]))
    etags.sort()
    assert [e for _, e in etags] == [f'"{_md5(c)}"' for c in _parts(data)]
    backend.complete_multipart("web", "obj", upload_id, etags)
    url = backend.presign_get("web", "obj", 60)
    assert httpx.get(url).content == data
    r = httpx.get(url, headers={"Range": f"bytes={PART - 10}-{2 * PART + 10}"})
    assert r.status_code == 206 and r.content == data[PART - 10:2 * PART + 11]
    assert httpx.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    # A part URL of the completed upload finds no upload.
    late = backend.presign_part("web", "obj", upload_id, 1, 60, max_bytes=PART)
    assert httpx.put(late, content=b"x").status_code == 404
    assert httpx.get(url).content == data


def _open_upload(project, key: str, size: int) -> None:
    """The in-progress upload a single-PUT URL writes for (the view refuses one without)."""
    Upload.objects.create(public_id=f"up-{key}", project=project, path=key, object_key=key,
                          size_original=size, reserved_bytes=size, part_size=65564,
                          put_size=size, status=UploadStatus.IN_PROGRESS)


@pytest.mark.django_db(transaction=True)
def test_a_single_put_takes_exactly_its_size(local_storage, world):
    backend = LocalBackend()
    backend.create_bucket("one")
    _open_upload(world.project, "k", 5000)
    _open_upload(world.project, "e", 0)
    body = os.urandom(5000)
    url = backend.presign_put("one", "k", 60, size=len(body))
    # Longer or shorter than signed: 400, and nothing is left behind.
    assert httpx.put(url, content=body + b"x").status_code == 400
    assert httpx.put(url, content=body[:-1]).status_code == 400

    def stream():
        yield body

    assert httpx.put(url, content=stream()).status_code == 411  # no Content-Length
    assert sorted(p.name for p in backend._bucket("one").iterdir()) == [".multipart"]
    r = httpx.put(url, content=body)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{_md5(body)}"'
    assert backend.head_size("one", "k") == len(body)
    assert httpx.get(backend.presign_get("one", "k", 60)).content == body
    assert [o.key for o in backend.iter_objects("one")] == ["k"]
    # The token is for this one operation: not a GET, not a part.
    token = url.rsplit("/", 1)[1]
    assert httpx.get(url.replace("/puts/", "/objects/")).status_code == 403
    assert httpx.put(url.replace("/puts/", "/parts/"), content=body).status_code == 403
    get_url = backend.presign_get("one", "k", 60)
    assert httpx.put(get_url.replace("/objects/", "/puts/"),
                     content=body).status_code == 403
    assert token
    # An empty object.
    empty = backend.presign_put("one", "e", 60, size=0)
    assert httpx.put(empty, content=b"").status_code == 200
    assert backend.head_size("one", "e") == 0


@pytest.mark.django_db(transaction=True)
def test_a_single_put_url_expires(local_storage):
    backend = LocalBackend()
    backend.create_bucket("exp")
    url = backend.presign_put("exp", "k", 1, size=3)
    time.sleep(2.1)
    assert httpx.put(url, content=b"abc").status_code == 403
    assert backend.head_size("exp", "k") is None


def test_a_single_put_that_breaks_leaves_nothing(backend):
    backend.create_bucket("b")
    backend.object_path("b", "k").write_bytes(b"previous")

    def broken():
        yield b"12345"
        raise ConnectionResetError

    with pytest.raises(StorageUnavailable):  # (a client gone is an OSError)
        backend.write_object("b", "k", 10, broken())
    assert backend.object_path("b", "k").read_bytes() == b"previous"
    with pytest.raises(StorageRejected):
        backend.write_object("b", "k", 10, [b"short"])
    assert sorted(p.name for p in backend._bucket("b").iterdir()) == [".multipart", "k"]
    assert backend.write_object("b", "k", 3, [b"new"]) == _md5(b"new")
    assert backend.object_path("b", "k").read_bytes() == b"new"


def test_two_writes_of_one_part_run_one_after_the_other(backend):
    upload_id, _ = _upload(backend, "b", "k", os.urandom(2 * PART))
    first, second = os.urandom(PART), os.urandom(PART)
    go_on = threading.Event()
    results: dict[str, str] = {}

    def slow():
        yield first[:1000]
        go_on.wait(10)
        yield first[1000:]

    a = threading.Thread(target=lambda: results.__setitem__(
        "a", backend.write_part("b", upload_id, 2, slow(), part_size=PART)))
    a.start()
    time.sleep(0.2)
    b = threading.Thread(target=lambda: results.__setitem__(
        "b", backend.write_part("b", upload_id, 2, [second], part_size=PART)))
    b.start()
    b.join(0.5)
    assert b.is_alive() and "b" not in results  # waits for the first write of part 2
    # Another part is not held up meanwhile.
    backend.write_part("b", upload_id, 1, [second], part_size=PART)
    go_on.set()
    a.join(10)
    b.join(10)
    assert results == {"a": _md5(first), "b": _md5(second)}
    listed = {p.number: p.etag for p in backend.list_parts("b", "k", upload_id)}
    assert listed == {1: _md5(second), 2: _md5(second)}
    # No lock file per part (the upload's one lock file holds a lock per part number).
    assert [p.name for p in backend._mp_dir("b", upload_id).iterdir()
            if p.name.endswith(".lock")] == [".lock"]
    backend.complete_multipart("b", "k", upload_id, sorted(listed.items()))
    assert backend.object_path("b", "k").read_bytes() == second + second
