"""Batch start and complete: each item follows the single-upload rules and fails alone."""

from __future__ import annotations

import base64

import pytest

import c4gh
from accounts.models import Unit
from transfers.models import File, Upload, UploadStatus
from transfers.selectors import unit_bytes_used
from transfers.tests.helpers import (
    api_url,
    complete_batch,
    complete_payload,
    encrypt,
    put_part,
    start_batch,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _data(i: int) -> bytes:
    return f"file {i}\n".encode() * (100 + i)


def _reserved_matches_live_uploads(world) -> list[str]:
    """The unit's reservation is exactly that of the uploads still in progress."""
    _, reserved = unit_bytes_used(unit_id=world.unit.pk)
    live = Upload.objects.filter(status=UploadStatus.IN_PROGRESS)
    assert reserved == sum(u.reserved_bytes for u in live)
    return sorted(u.path for u in live)


def test_batch_start_put_complete(world, storage):
    client = world.client()
    data = {f"run/{i}.txt": _data(i) for i in range(5)}
    r = start_batch(client, world.project, [{"path": p, "size_original": len(d)}
                                            for p, d in data.items()])
    assert r.status_code == 200, r.json()
    items = r.json()["uploads"]
    assert [i["path"] for i in items] == list(data)
    done = []
    for item in items:
        assert item["error"] is None
        assert [p["part_number"] for p in item["parts"]] == [1]  # no part-urls call needed
        enc = encrypt(data[item["path"]], world.project.public_key)
        etag = put_part(item["parts"][0]["url"], enc.body)
        done.append({"upload_id": item["upload"]["upload_id"],
                     **complete_payload(enc, {1: etag})})
    r = complete_batch(client, world.project, done)
    assert r.status_code == 200, r.json()
    results = r.json()["uploads"]
    assert [x["upload_id"] for x in results] == [d["upload_id"] for d in done]
    assert all(x["error"] is None for x in results)
    assert sorted(x["file"]["path"] for x in results) == sorted(data)
    assert File.objects.count() == 5
    assert _reserved_matches_live_uploads(world) == []
    # The files are listed with their folder totals, as after single uploads.
    listing = client.get(api_url(world.project, "files"), {"folder": "run"}).json()
    assert listing["folder"]["file_count"] == 5


def test_batch_start_refuses_items_alone(world, storage):
    client = world.client()
    upload(client, world.project, "exists.bin", b"old")
    r = start_batch(client, world.project, [
        {"path": "good.bin", "size_original": 10},
        {"path": "../escape", "size_original": 10},
        {"path": "exists.bin", "size_original": 10},
        {"path": "dup.bin", "size_original": 10},
        {"path": "dup.bin", "size_original": 10},
        {"path": "huge.bin", "size_original": 6 * 1024**4},
        {"path": "exists.bin", "size_original": 10, "overwrite": True},
    ])
    assert r.status_code == 200, r.json()
    items = r.json()["uploads"]
    errors = [(i["error"] or {}).get("status") for i in items]
    assert errors == [None, 400, 409, None, 409, 400, None]
    assert items[4]["error"]["upload_id"] == items[3]["upload"]["upload_id"]
    assert "overwrite" in items[2]["error"]["detail"]
    assert all(i["upload"] is None and i["parts"] == [] for i in items if i["error"])
    assert _reserved_matches_live_uploads(world) == ["dup.bin", "exists.bin", "good.bin"]
    assert File.objects.count() == 1


def test_batch_start_reserves_quota_item_by_item(world, storage):
    size = 100_000
    Unit.objects.filter(pk=world.unit.pk).update(
        quota_bytes=2 * c4gh.stored_size(size) + 10)
    r = start_batch(world.client(), world.project,
                    [{"path": f"{i}.bin", "size_original": size} for i in range(3)])
    items = r.json()["uploads"]
    assert [i["error"] is None for i in items] == [True, True, False]
    assert items[2]["error"]["status"] == 413
    assert items[2]["error"]["reserved_bytes"] == 2 * c4gh.stored_size(size)
    assert _reserved_matches_live_uploads(world) == ["0.bin", "1.bin"]


def test_batch_start_sends_only_the_first_parts_asked_for(world, s3_storage, settings):
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 1
    r = start_batch(world.client(), world.project, [
        {"path": "big.bin", "size_original": 5 * 65536},
        {"path": "small.bin", "size_original": 3}], first_parts=3)
    big, small = r.json()["uploads"]
    assert [p["part_number"] for p in big["parts"]] == [1, 2, 3]
    assert [p["part_number"] for p in small["parts"]] == [1]
    assert "testing-secret" not in r.content.decode()


def test_batch_complete_refuses_items_alone(world, storage):
    client = world.client()
    paths = ["good.bin", "bad-header.bin", "bad-etag.bin", "bad-size.bin"]
    encs = {p: encrypt(_data(i), world.project.public_key) for i, p in enumerate(paths)}
    started = start_batch(client, world.project, [
        {"path": p, "size_original": encs[p].size_original} for p in paths]).json()
    ids, etags = {}, {}
    for item in started["uploads"]:
        ids[item["path"]] = item["upload"]["upload_id"]
        etags[item["path"]] = put_part(item["parts"][0]["url"], encs[item["path"]].body)
    # An upload of another staff member, in the same project.
    other = world.client(world.other_staff)
    theirs = start_batch(other, world.project, [{"path": "theirs.bin", "size_original": 3}])
    theirs_id = theirs.json()["uploads"][0]["upload"]["upload_id"]
    _, foreign_pk = c4gh.generate_keypair()
    foreign = base64.b64encode(c4gh.encrypt_header(b"k" * 32, [foreign_pk])).decode()

    def item(path, **over):
        return {"upload_id": ids[path], **complete_payload(encs[path], {1: etags[path]},
                                                           **over)}

    enc_t = encrypt(b"abc", world.project.public_key)
    r = complete_batch(client, world.project, [
        item("good.bin"),
        item("bad-header.bin", header=foreign),
        item("bad-etag.bin", parts=[{"part_number": 1, "etag": "0" * 32}]),
        item("bad-size.bin", size_original=1),
        {"upload_id": theirs_id, **complete_payload(enc_t, {1: "0" * 32})},
        {"upload_id": "no-such-upload", **complete_payload(enc_t, {1: "0" * 32})},
        item("good.bin"),  # twice in one batch: the second finds it completed
    ])
    assert r.status_code == 200, r.json()
    res = r.json()["uploads"]
    assert res[0]["error"] is None and res[0]["file"]["path"] == "good.bin"
    assert [x["error"]["status"] for x in res[1:]] == [400, 400, 400, 403, 404, 409]
    assert "not addressed" in res[1]["error"]["detail"]
    assert "ETag" in res[2]["error"]["detail"]
    assert res[4]["error"]["code"] == "not_allowed"
    assert list(File.objects.values_list("path", flat=True)) == ["good.bin"]
    # Refused completes leave their uploads in progress (fix and complete again, or
    # abort), holding exactly their own reservation; nothing else is reserved.
    assert _reserved_matches_live_uploads(world) == [
        "bad-etag.bin", "bad-header.bin", "bad-size.bin", "theirs.bin"]
    r = complete_batch(client, world.project, [item("bad-etag.bin")])
    assert r.json()["uploads"][0]["error"] is None
    for path in ("bad-header.bin", "bad-size.bin"):
        client.delete(api_url(world.project, f"uploads/{ids[path]}"))
    other.delete(api_url(world.project, f"uploads/{theirs_id}"))
    assert _reserved_matches_live_uploads(world) == []
    assert File.objects.count() == 2


def test_batch_complete_unlocks_the_project_key_once(world, s3_storage, monkeypatch):
    from transfers.services import headers

    calls = []
    real = headers.project_private_key

    def counting(**kw):
        calls.append(kw["project"].pk)
        return real(**kw)

    monkeypatch.setattr(headers, "project_private_key", counting)
    client = world.client()
    encs = [encrypt(_data(i), world.project.public_key) for i in range(4)]
    started = start_batch(client, world.project, [
        {"path": f"{i}.bin", "size_original": e.size_original}
        for i, e in enumerate(encs)]).json()["uploads"]
    items = [{"upload_id": s["upload"]["upload_id"],
              **complete_payload(e, {1: put_part(s["parts"][0]["url"], e.body)})}
             for s, e in zip(started, encs, strict=True)]
    r = complete_batch(client, world.project, items)
    assert all(x["error"] is None for x in r.json()["uploads"])
    assert calls == [world.project.pk]


def test_batch_without_a_key_refuses_each_item(world, s3_storage, django_user_model):
    from keys.models import ProjectUserKey

    client = world.client()
    enc = encrypt(b"abc", world.project.public_key)
    s = start_batch(client, world.project, [{"path": "a.bin", "size_original": 3}])
    s = s.json()["uploads"][0]
    etag = put_part(s["parts"][0]["url"], enc.body)
    ProjectUserKey.objects.filter(project=world.project, user=world.staff).delete()
    r = complete_batch(client, world.project, [
        {"upload_id": s["upload"]["upload_id"], **complete_payload(enc, {1: etag})}])
    assert r.json()["uploads"][0]["error"]["status"] == 403
    assert not File.objects.exists()


def test_batch_limits(world, s3_storage):
    client = world.client()
    r = start_batch(client, world.project,
                    [{"path": f"{i}", "size_original": 1} for i in range(201)])
    assert r.status_code == 400
    assert complete_batch(client, world.project, []).status_code == 400
    assert not Upload.objects.exists()


def test_batch_start_storage_unreachable_writes_nothing(world, s3_storage, settings):
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    r = start_batch(world.client(), world.project,
                    [{"path": "a.bin", "size_original": 1}, {"path": "b", "size_original": 1}])
    assert r.status_code == 503
    assert not Upload.objects.exists()
