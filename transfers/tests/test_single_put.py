"""Single-PUT uploads: a file that fits in one part is one presigned PutObject (its exact
length signed into the URL), completed without ListParts/CompleteMultipart/HEAD."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from audit.models import AuditEvent
from transfers.models import File, Folder, Upload, UploadStatus
from transfers.selectors import unit_bytes_used
from transfers.storage import storage_for_project
from transfers.storage.base import single_put_backend
from transfers.tests.helpers import (
    api_url,
    complete_batch,
    complete_payload,
    encrypt,
    put_part,
    put_parts,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _start(client, project, items, single_put=True):
    body = {"uploads": items, "first_parts": 1}
    if single_put:
        body["single_put"] = True
    r = client.post(api_url(project, "uploads/batch"), body, format="json")
    assert r.status_code == 200, r.json()
    return r.json()["uploads"]


def _object(project, key: str) -> bytes:
    r = httpx.get(storage_for_project(project).presign_get(project.bucket, key, 60),
                  timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_single_put_end_to_end(world, storage):
    """Both S3 regions give one signed PUT per small file; the local backend gives it once
    it can presign single PUTs, and a multipart upload (as before) until then."""
    client = world.client()
    data = {f"sp/{i}.txt": (b"%d " % i) * (1000 + i) for i in range(4)}
    encs = {p: encrypt(d, world.project.public_key) for p, d in data.items()}
    items = _start(client, world.project, [
        {"path": p, "size_original": len(d), "size_stored": len(encs[p].body)}
        for p, d in data.items()])
    single = single_put_backend(storage_for_project(world.project)) is not None
    done = []
    for item in items:
        assert item["error"] is None
        enc = encs[item["path"]]
        if single:
            assert item["put"]["size"] == len(enc.body) == item["upload"]["put_size"]
            assert item["parts"] == []
            etag = put_part(item["put"]["url"], enc.body)
        else:
            assert item["put"] is None and item["upload"]["put_size"] is None
            etag = put_part(item["parts"][0]["url"], enc.body)
        done.append({"upload_id": item["upload"]["upload_id"],
                     **complete_payload(enc, {1: etag})})
    assert single or storage == "local"
    r = complete_batch(client, world.project, done)
    assert r.status_code == 200, r.json()
    assert all(x["error"] is None for x in r.json()["uploads"]), [
        x["error"] for x in r.json()["uploads"]]
    assert File.objects.count() == 4
    assert unit_bytes_used(unit_id=world.unit.pk) == (
        sum(len(e.body) for e in encs.values()), 0)
    for f in File.objects.all():
        assert _object(world.project, f.object_key) == encs[f.path].body
        assert f.header == encs[f.path].header
    listing = client.get(api_url(world.project, "files"), {"folder": "sp"}).json()
    assert listing["folder"]["file_count"] == 4


def test_old_client_gets_multipart(world, s3_storage):
    """Without single_put the answer is what it always was (and no `put` key)."""
    client = world.client()
    enc = encrypt(b"old client\n" * 10, world.project.public_key)
    [item] = _start(client, world.project, [
        {"path": "old.txt", "size_original": enc.size_original,
         "size_stored": len(enc.body)}], single_put=False)
    assert "put" not in item and item["upload"]["put_size"] is None
    assert [p["part_number"] for p in item["parts"]] == [1]
    etag = put_part(item["parts"][0]["url"], enc.body)
    r = complete_batch(client, world.project, [
        {"upload_id": item["upload"]["upload_id"], **complete_payload(enc, {1: etag})}])
    assert r.json()["uploads"][0]["error"] is None


def test_signed_length_is_enforced_and_checked(world, s3_storage):
    client = world.client()
    enc = encrypt(b"x" * 5000, world.project.public_key)
    [item] = _start(client, world.project, [
        {"path": "len.bin", "size_original": enc.size_original,
         "size_stored": len(enc.body)}])
    url = item["put"]["url"]
    assert "content-length" in httpx.URL(url).params["X-Amz-SignedHeaders"]
    upload_id = item["upload"]["upload_id"]
    etag = put_part(url, enc.body)
    # A complete that claims another stored size is refused, and the upload stays.
    r = complete_batch(client, world.project, [
        {"upload_id": upload_id, **complete_payload(enc, {1: etag},
                                                    size_stored=len(enc.body) + 1)}])
    err = r.json()["uploads"][0]["error"]
    assert err["status"] == 400 and "Stored size mismatch" in err["detail"], err
    r = complete_batch(client, world.project, [
        {"upload_id": upload_id, **complete_payload(enc, {1: etag}, compressed=True,
                                                    size_stored=len(enc.body) - 1)}])
    err = r.json()["uploads"][0]["error"]
    assert err["status"] == 400 and err["put_size"] == len(enc.body), err
    assert Upload.objects.get(public_id=upload_id).status == UploadStatus.IN_PROGRESS
    # It has no parts to resume or ask URLs for.
    r = client.get(api_url(world.project, f"uploads/{upload_id}/parts"))
    assert r.status_code == 200 and r.json()["parts"] == []
    r = client.post(api_url(world.project, f"uploads/{upload_id}/part-urls"),
                    {"part_numbers": [1]}, format="json")
    assert r.status_code == 400
    # Aborting deletes the object the PUT created.
    r = client.delete(api_url(world.project, f"uploads/{upload_id}"))
    assert r.status_code == 200, r.json()
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, Upload.objects.get(
        public_id=upload_id).object_key) is None
    assert unit_bytes_used(unit_id=world.unit.pk) == (0, 0)


def test_mixed_batch_totals_exact(world, s3_region_storage, settings):
    """Small files (single PUT), one larger than a part (multipart), a compressed one and a
    refused one in one batch: folder totals and the quota are exact afterwards."""
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 80  # S3's 5 MiB minimum: 6 MB is two parts
    client = world.client()
    small = {f"mix/a/{i}.txt": b"small %d\n" % i * 50 for i in range(3)}
    big = b"B" * 6_000_000
    fastq = b"@r1\nACGTACGTACGT\n+\nIIIIIIIIIIII\n" * 2000  # compresses well
    encs = {p: encrypt(d, world.project.public_key) for p, d in small.items()}
    encs["mix/big.bin"] = encrypt(big, world.project.public_key)
    encs["mix/a/r.fastq"] = encrypt(fastq, world.project.public_key, compress=True)
    assert encs["mix/a/r.fastq"].compressed
    paths = list(encs)
    items = _start(client, world.project, [
        {"path": p, "size_original": encs[p].size_original, "size_stored": len(encs[p].body)}
        for p in paths] + [{"path": "mix/../bad", "size_original": 1, "size_stored": 1}])
    assert items[-1]["error"]["status"] == 400
    by_path = {i["path"]: i for i in items[:-1]}
    assert by_path["mix/big.bin"]["put"] is None  # more than one part: multipart
    assert all(by_path[p]["put"] for p in paths if p != "mix/big.bin")
    done = []
    for p in paths:
        item = by_path[p]
        if item["put"]:
            etags = {1: put_part(item["put"]["url"], encs[p].body)}
        else:
            etags = put_parts(client, world.project, item["upload"], encs[p].body)
        done.append({"upload_id": item["upload"]["upload_id"],
                     **complete_payload(encs[p], etags)})
    before = AuditEvent.objects.filter(action="file.upload").count()
    r = complete_batch(client, world.project, done)
    assert all(x["error"] is None for x in r.json()["uploads"]), [
        x["error"] for x in r.json()["uploads"]]
    # One event for the four single PUTs, one for the multipart upload.
    assert AuditEvent.objects.filter(action="file.upload").count() == before + 2
    stored = sum(len(e.body) for e in encs.values())
    original = sum(e.size_original for e in encs.values())
    assert unit_bytes_used(unit_id=world.unit.pk) == (stored, 0)
    folders = {f.path: f for f in Folder.objects.filter(project=world.project)}
    assert (folders[""].file_count, folders[""].size_stored, folders[""].size_original) == (
        5, stored, original)
    in_a = [p for p in paths if p.startswith("mix/a/")]
    assert folders["mix/a"].file_count == 4
    assert folders["mix/a"].size_stored == sum(len(encs[p].body) for p in in_a)
    assert folders["mix"].size_stored == stored


def _put_batch(client, project, data: dict[str, bytes], overwrite=False):
    encs = {p: encrypt(d, project.public_key) for p, d in data.items()}
    items = _start(client, project, [
        {"path": p, "size_original": len(d), "size_stored": len(encs[p].body),
         "overwrite": overwrite} for p, d in data.items()])
    done = [{"upload_id": i["upload"]["upload_id"], **complete_payload(
        encs[i["path"]], {1: put_part(i["put"]["url"], encs[i["path"]].body)})}
        for i in items]
    r = complete_batch(client, project, done)
    assert r.status_code == 200, r.json()
    return encs, r.json()["uploads"]


def test_batch_of_single_puts_is_one_event_and_exact(world, s3_storage):
    client = world.client()
    data = {f"one/{i % 3}/{i}.txt": b"%d\n" % i * (10 + i) for i in range(30)}
    before = AuditEvent.objects.count()
    encs, res = _put_batch(client, world.project, data)
    assert all(x["error"] is None for x in res)
    events = list(AuditEvent.objects.order_by("pk")[before:])
    assert [e.action for e in events] == ["upload.start", "file.upload"]
    details = events[1].details
    stored = sum(len(e.body) for e in encs.values())
    assert details["files"] == 30 and details["size_stored"] == stored
    assert sorted(details["paths"]) == sorted(data)
    assert File.objects.count() == 30
    assert Upload.objects.filter(status=UploadStatus.COMPLETED).count() == 30
    root = Folder.objects.get(project=world.project, path="")
    assert (root.file_count, root.size_stored) == (30, stored)
    assert Folder.objects.get(project=world.project, path="one/1").file_count == 10
    # Replace three of them (overwrite): old versions closed, totals follow the new sizes.
    new = {p: b"replaced " * 100 for p in list(data)[:3]}
    encs2, res = _put_batch(client, world.project, new, overwrite=True)
    assert all(x["error"] is None for x in res), res
    stored2 = stored - sum(len(encs[p].body) for p in new) + sum(
        len(e.body) for e in encs2.values())
    root.refresh_from_db()
    assert (root.file_count, root.size_stored) == (30, stored2)
    assert unit_bytes_used(unit_id=world.unit.pk) == (stored2, 0)
    # Without overwrite, an existing path is refused at start, nothing changes.
    [item] = _start(client, world.project, [
        {"path": list(data)[5], "size_original": 1, "size_stored": 29}])
    assert item["error"]["status"] == 409


def test_a_single_put_url_writes_nothing_once_its_upload_is_finished(world, local_storage):
    """A retry of the PUT while the upload is open is fine; replayed after the complete
    (or the abort), within the URL's lifetime, it would replace the bytes of a delivered
    file, so the local store refuses it (409) and the object stays as it was."""
    client = world.client()
    encs = {p: encrypt(b"%s\n" % p.encode() * 300, world.project.public_key)
            for p in ("rp/kept.txt", "rp/aborted.txt")}
    items = {i["path"]: i for i in _start(client, world.project, [
        {"path": p, "size_original": e.size_original, "size_stored": len(e.body)}
        for p, e in encs.items()])}
    kept, aborted = items["rp/kept.txt"], items["rp/aborted.txt"]
    enc = encs["rp/kept.txt"]
    put_part(kept["put"]["url"], b"\0" * len(enc.body))  # a first try, replaced by:
    etag = put_part(kept["put"]["url"], enc.body)
    r = complete_batch(client, world.project, [
        {"upload_id": kept["upload"]["upload_id"], **complete_payload(enc, {1: etag})}])
    assert r.json()["uploads"][0]["error"] is None
    key = File.objects.get(path="rp/kept.txt").object_key
    replay = httpx.put(kept["put"]["url"], content=b"\xff" * len(enc.body), timeout=30)
    assert replay.status_code == 409 and "finished" in replay.text
    assert _object(world.project, key) == enc.body
    r = client.delete(api_url(world.project, f"uploads/{aborted['upload']['upload_id']}"))
    assert r.status_code == 200, r.json()
    late = httpx.put(aborted["put"]["url"], content=encs["rp/aborted.txt"].body, timeout=30)
    assert late.status_code == 409
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, Upload.objects.get(
        public_id=aborted["upload"]["upload_id"]).object_key) is None


def test_a_put_that_started_before_the_complete_and_ends_after_it_writes_nothing(
        world, local_storage):
    """The check before the body is read is not enough: a slow (or replayed) PUT that is
    still sending when the complete commits must not land on the delivered file. The
    rename is decided under the upload row's lock (``single_put_publish``)."""
    client = world.client()
    enc = encrypt(b"kept\n" * 3000, world.project.public_key)
    [item] = _start(client, world.project, [
        {"path": "race/kept.txt", "size_original": enc.size_original,
         "size_stored": len(enc.body)}])
    url = item["put"]["url"]
    etag = put_part(url, enc.body)
    evil = b"\xff" * len(enc.body)
    sent_first, go, result = threading.Event(), threading.Event(), {}

    def body():
        yield evil[:1000]
        sent_first.set()
        go.wait(30)
        yield evil[1000:]

    def replay():
        result["r"] = httpx.put(url, content=body(),
                                headers={"Content-Length": str(len(evil))}, timeout=60)

    thread = threading.Thread(target=replay)
    thread.start()
    assert sent_first.wait(30)
    time.sleep(0.5)  # the view is reading the body: past its early check
    r = complete_batch(client, world.project, [
        {"upload_id": item["upload"]["upload_id"], **complete_payload(enc, {1: etag})}])
    assert r.json()["uploads"][0]["error"] is None
    go.set()
    thread.join(60)
    assert result["r"].status_code == 409 and "finished" in result["r"].text
    key = File.objects.get(path="race/kept.txt").object_key
    assert _object(world.project, key) == enc.body
