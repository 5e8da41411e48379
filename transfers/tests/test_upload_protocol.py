"""The whole protocol over real HTTP against moto's S3 server and the local backend."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

import c4gh
from transfers.models import File, FileVersion, Upload, UploadStatus
from transfers.storage import storage_for_project
from transfers.tests.helpers import (
    api_url,
    complete,
    encrypt,
    put_part,
    put_parts,
    start,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Three parts with the S3 minimum part size (80 segments = 5 245 120 bytes).
BIG = 80 * c4gh.SEGMENT_SIZE * 2 + 12345


@pytest.fixture(autouse=True)
def _s3_minimum_parts(settings):
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 80


def test_upload_list_download_by_range(world, storage):
    data = os.urandom(BIG)
    client = world.client()
    f = upload(client, world.project, "run1/sample A/reads.fastq", data)
    assert f["path"] == "run1/sample A/reads.fastq"
    assert f["size_stored"] == c4gh.stored_size(BIG)

    listing = client.get(api_url(world.project, "files"), {"folder": "run1"}).json()
    assert [d["name"] for d in listing["folders"]] == ["sample A"]
    assert listing["folders"][0]["file_count"] == 1
    assert listing["folders"][0]["size_stored"] == f["size_stored"]

    found = client.post(api_url(world.project, "files/match"),
                        {"paths": ["run1/sample A/reads.fastq", "nope"]}, format="json")
    assert found.json() == {"found": ["run1/sample A/reads.fastq"]}

    sk, pk = c4gh.generate_keypair()
    r = client.post(api_url(world.project, "files/download"),
                    {"public_key": base64.b64encode(pk).decode(), "folder": "run1"},
                    format="json")
    assert r.status_code == 200, r.json()
    item = r.json()["files"][0]
    assert r.json()["expires_in"] <= 3600
    header = base64.b64decode(item["header"])
    # Only the client's ephemeral key opens the header it got.
    assert c4gh.parse_header(header, sk).session_keys
    # Fetch the segments in two ranges, at a segment boundary, as a resuming client does.
    cut = 3 * c4gh.CIPHER_SEGMENT_SIZE
    first = httpx.get(item["url"], headers={"Range": f"bytes=0-{cut - 1}"}, timeout=30)
    assert first.status_code == 206
    rest = httpx.get(item["url"], headers={"Range": f"bytes={cut}-"}, timeout=30)
    assert rest.status_code == 206
    plain = c4gh.decrypt_bytes(header + first.content + rest.content, sk)
    assert hashlib.sha256(plain).hexdigest() == item["checksum"]
    assert plain == data
    assert File.objects.get(path=f["path"]).last_downloaded_at is not None


def test_resume_after_a_failed_part(world, storage):
    data = os.urandom(BIG)
    enc = encrypt(data, world.project.public_key)
    client = world.client()
    up = start(client, world.project, "big.bin", len(data)).json()
    etags = put_parts(client, world.project, up, enc.body, only=[1, 3])
    # Part 2 "failed": the client asks which parts storage holds and sends the rest.
    r = client.get(api_url(world.project, f"uploads/{up['upload_id']}/parts"))
    assert r.status_code == 200
    assert [p["part_number"] for p in r.json()["parts"]] == [1, 3]
    assert {p["part_number"]: p["etag"] for p in r.json()["parts"]} == etags
    # Completing with a part missing is refused and leaves the upload resumable.
    r = complete(client, world.project, up["upload_id"], enc, {**etags, 2: etags[1]})
    assert r.status_code == 400, r.json()
    assert not File.objects.exists()
    etags |= put_parts(client, world.project, up, enc.body, only=[2])
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 201, r.json()
    assert Upload.objects.get().status == UploadStatus.COMPLETED


def test_overwrite_keeps_the_old_version_and_deletes_its_object(world, storage):
    client = world.client()
    first = upload(client, world.project, "a/x.txt", b"first version")
    old_key = File.objects.get().object_key
    r = start(client, world.project, "a/x.txt", 5)
    assert r.status_code == 409 and "overwrite" in r.json()["detail"]
    upload(client, world.project, "a/x.txt", b"second", overwrite=True)
    f = File.objects.get()
    assert f.object_key != old_key and f.size_original == 6
    versions = FileVersion.objects.order_by("uploaded_at")
    assert [v.deleted_at is not None for v in versions] == [True, False]
    assert versions[0].object_key == old_key
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, old_key) is None
    assert backend.head_size(world.project.bucket, f.object_key) == f.size_stored
    listing = client.get(api_url(world.project, "files"), {"folder": "a"}).json()
    assert listing["folder"]["file_count"] == 1
    assert listing["folder"]["size_original"] == 6
    assert first["path"] == "a/x.txt"


def test_the_start_can_bring_the_first_part_urls(world, storage):
    """`first_parts` on the one-file start: the answer carries those parts' URLs (the
    client's first part need not wait for a part-urls request); they work as any."""
    data = os.urandom(BIG)
    enc = encrypt(data, world.project.public_key)
    client = world.client()
    plain = start(client, world.project, "without.bin", len(data)).json()
    assert "parts" not in plain  # (an older client's answer, unchanged)
    r = client.post(api_url(world.project, "uploads"),
                    {"path": "first.bin", "size_original": len(data), "first_parts": 2},
                    format="json")
    assert r.status_code == 201, r.json()
    up = r.json()
    assert [p["part_number"] for p in up["parts"]] == [1, 2]
    size = up["part_size"]
    etags = {p["part_number"]: put_part(p["url"], enc.body[(p["part_number"] - 1) * size:
                                                           p["part_number"] * size])
             for p in up["parts"]}
    etags |= put_parts(client, world.project, up, enc.body, only=[3])
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 201, r.json()
    assert File.objects.get(path="first.bin").size_stored == len(enc.body)
    r = client.post(api_url(world.project, "uploads"),
                    {"path": "many.bin", "size_original": 1, "first_parts": 101},
                    format="json")
    assert r.status_code == 400 and "first_parts" in r.json()["detail"]
