"""Per-part CRC32 checksums (``part_checksum: "crc32"`` at start): signed into every part
and single-PUT URL, verified by the store, named in the complete. Older clients (no
``part_checksum``) and the operator's switch off get the uploads of before."""

from __future__ import annotations

import base64
import os
import zlib
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from transfers.models import Upload
from transfers.storage import LocalBackend, storage_for_project
from transfers.tests.helpers import api_url, complete, encrypt, put_part

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _checksums_on(settings):
    """The operator's switch is off by default; these tests are of uploads with it on
    (test_switch_off_gives_unchecksummed_uploads turns it off again)."""
    settings.DDS_STORAGE_PART_CHECKSUMS = True

#: 80 segments: S3's 5 MiB minimum part, so three parts stay small.
SEGMENTS = 80


def crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _start(client, project, path, size, **extra):
    r = client.post(api_url(project, "uploads"),
                    {"path": path, "size_original": size, **extra}, format="json")
    assert r.status_code == 201, r.json()
    return r.json()


def _chunks(upload, body: bytes) -> list[bytes]:
    size = upload["part_size"]
    return [body[i:i + size] for i in range(0, len(body), size)]


def _checked_urls(client, project, upload_id, parts: dict[int, str]):
    return client.post(api_url(project, f"uploads/{upload_id}/part-urls"), {
        "parts": [{"part_number": n, "crc32": c} for n, c in parts.items()]}, format="json")


def _put(url: str, body: bytes, crc32: str | None) -> httpx.Response:
    headers = {} if crc32 is None else {"x-amz-checksum-crc32": crc32}
    return httpx.put(url, content=body, headers=headers, timeout=30)


def _signed_headers(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")


def _s3(settings):
    return boto3.client("s3", endpoint_url=settings.AWS_S3_ENDPOINT_URL,
                        region_name=settings.AWS_S3_REGION_NAME,
                        aws_access_key_id="testing-key-id",
                        aws_secret_access_key="testing-secret",
                        config=Config(signature_version="s3v4",
                                      s3={"addressing_style": "path"}))


def test_checksummed_three_part_upload(world, storage, settings):
    """On every store: the upload is checksummed, each part URL signs its CRC32, the
    complete names them; S3 keeps the object's CRC32 (a composite of the parts'), the
    local store the parts' in ListParts."""
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = SEGMENTS
    client = world.client()
    data = os.urandom(2 * SEGMENTS * 65536 + 1000)
    enc = encrypt(data, world.project.public_key)
    up = _start(client, world.project, "crc/three.bin", len(data), part_checksum="crc32")
    assert up["part_checksum"] == "crc32"
    assert Upload.objects.get(public_id=up["upload_id"]).part_checksum == "crc32"
    chunks = _chunks(up, enc.body)
    assert len(chunks) == 3
    sums = {n: crc(c) for n, c in enumerate(chunks, 1)}
    r = _checked_urls(client, world.project, up["upload_id"], sums)
    assert r.status_code == 200, r.json()
    urls = {p["part_number"]: p["url"] for p in r.json()["parts"]}
    etags = {}
    for n, chunk in enumerate(chunks, 1):
        if storage == "s3":
            assert "x-amz-checksum-crc32" in _signed_headers(urls[n])
        got = _put(urls[n], chunk, sums[n])
        assert got.status_code == 200, got.text
        etags[n] = got.headers["ETag"].strip('"')
    listed = client.get(api_url(world.project, f"uploads/{up['upload_id']}/parts")).json()
    for p in listed["parts"]:
        # moto does not report part checksums in ListParts; the local store does.
        assert p["crc32"] == sums[p["part_number"]] or (storage == "s3" and p["crc32"] is None)
    if storage == "local":
        assert [p["crc32"] for p in listed["parts"]] == [sums[1], sums[2], sums[3]]
    r = client.post(api_url(world.project, f"uploads/{up['upload_id']}/complete"), {
        "parts": [{"part_number": n, "etag": e, "crc32": sums[n]} for n, e in etags.items()],
        "header": base64.b64encode(enc.header).decode(), "checksum": enc.sha256,
        "size_original": len(data), "size_stored": len(enc.body), "compressed": False},
        format="json")
    assert r.status_code == 201, r.json()
    upload = Upload.objects.get(public_id=up["upload_id"])
    if storage == "s3":
        head = _s3(settings).head_object(Bucket=world.project.bucket, Key=upload.object_key,
                                         ChecksumMode="ENABLED")
        # S3's composite checksum: the CRC32 of the parts' CRC32s (moto computes it from
        # the bytes it received, so it also says the parts were the ones checksummed).
        composite = crc(b"".join(base64.b64decode(sums[n]) for n in (1, 2, 3)))
        assert head["ChecksumCRC32"].split("-")[0] == composite
    else:
        path = LocalBackend().object_path(world.project.bucket, upload.object_key)
        assert path.read_bytes() == enc.body


def test_local_refuses_a_part_whose_body_does_not_match_its_crc32(world, local_storage,
                                                                   settings):
    """The local store checks the body against the signed CRC32: 400 BadDigest, nothing
    stored, a stored part left as it was; the right bytes then complete. (moto does not
    verify part checksums: on S3 the signed header and the complete are what the tests
    can check.)"""
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = SEGMENTS
    client = world.client()
    data = os.urandom(SEGMENTS * 65536 + 5000)
    enc = encrypt(data, world.project.public_key)
    up = _start(client, world.project, "crc/bad.bin", len(data), part_checksum="crc32")
    chunks = _chunks(up, enc.body)
    sums = {n: crc(c) for n, c in enumerate(chunks, 1)}
    urls = {p["part_number"]: p["url"] for p in _checked_urls(
        client, world.project, up["upload_id"], sums).json()["parts"]}
    good1 = _put(urls[1], chunks[1 - 1], sums[1])
    assert good1.status_code == 200
    upload = Upload.objects.get(public_id=up["upload_id"])
    backend = LocalBackend()
    mp = backend.object_path(world.project.bucket, ".multipart") / upload.multipart_id
    data_before = (mp / "data").read_bytes()
    listed_before = backend.list_parts(world.project.bucket, upload.object_key,
                                       upload.multipart_id)

    damaged = bytearray(chunks[1])
    damaged[len(damaged) // 2] ^= 0x01
    r = _put(urls[2], bytes(damaged), sums[2])
    assert r.status_code == 400 and "BadDigest" in r.text
    # Part 1 stored again with damaged bytes: refused, the stored part 1 is untouched.
    bad1 = bytearray(chunks[0])
    bad1[7] ^= 0x80
    r = _put(urls[1], bytes(bad1), sums[1])
    assert r.status_code == 400 and "BadDigest" in r.text
    assert backend.list_parts(world.project.bucket, upload.object_key,
                              upload.multipart_id) == listed_before  # part 2 not stored
    assert (mp / "data").read_bytes()[:len(chunks[0])] == data_before[:len(chunks[0])]
    assert not [n for n in os.listdir(mp) if ".tmp" in n or n.isdigit()]
    # The URL signs the header's value: another one (or none) is refused before any byte.
    assert _put(urls[2], bytes(damaged), crc(bytes(damaged))).status_code == 403
    assert _put(urls[2], chunks[1], None).status_code == 403

    good2 = _put(urls[2], chunks[1], sums[2])
    assert good2.status_code == 200
    etags = {1: good1.headers["ETag"].strip('"'), 2: good2.headers["ETag"].strip('"')}
    # A complete claiming another CRC32 than storage verified is refused (stays open).
    wrong = complete(client, world.project, up["upload_id"], enc, etags, parts=[
        {"part_number": 1, "etag": etags[1], "crc32": sums[1]},
        {"part_number": 2, "etag": etags[2], "crc32": crc(b"other")}])
    assert wrong.status_code == 400 and "CRC32" in wrong.json()["detail"], wrong.json()
    no_crc = complete(client, world.project, up["upload_id"], enc, etags)
    assert no_crc.status_code == 400 and "crc32" in no_crc.json()["detail"], no_crc.json()
    r = complete(client, world.project, up["upload_id"], enc, etags, parts=[
        {"part_number": n, "etag": e, "crc32": sums[n]} for n, e in etags.items()])
    assert r.status_code == 201, r.json()
    assert backend.object_path(world.project.bucket, upload.object_key).read_bytes() == \
        enc.body


def test_unchecksummed_upload_as_before(world, storage):
    """An older client (no part_checksum): no checksum anywhere, part_numbers as before;
    part URLs with CRC32s are refused for it (they would not be checked)."""
    client = world.client()
    data = b"old client " * 500
    enc = encrypt(data, world.project.public_key)
    up = _start(client, world.project, "crc/old.bin", len(data))
    assert up["part_checksum"] is None
    assert Upload.objects.get(public_id=up["upload_id"]).part_checksum == ""
    r = _checked_urls(client, world.project, up["upload_id"], {1: crc(enc.body)})
    assert r.status_code == 400 and "does not checksum" in r.json()["detail"]
    r = client.post(api_url(world.project, f"uploads/{up['upload_id']}/part-urls"),
                    {"part_numbers": [1]}, format="json")
    url = r.json()["parts"][0]["url"]
    if storage == "s3":
        assert "x-amz-checksum-crc32" not in _signed_headers(url)
    etag = put_part(url, enc.body)
    parts = client.get(api_url(world.project, f"uploads/{up['upload_id']}/parts")).json()
    assert parts["parts"][0]["crc32"] is None
    r = complete(client, world.project, up["upload_id"], enc, {1: etag})
    assert r.status_code == 201, r.json()


def test_part_url_requests_are_checked(world, local_storage):
    client = world.client()
    up = _start(client, world.project, "crc/api.bin", 1000, part_checksum="crc32")
    url = api_url(world.project, f"uploads/{up['upload_id']}/part-urls")
    r = client.post(url, {"part_numbers": [1]}, format="json")
    assert r.status_code == 400 and "checksums its parts" in r.json()["detail"]
    assert r.json()["missing_crc32"] == [1]
    for bad in ("nope", "AAAAAAAA", "AAAAAB==", "AAAAAA=", "AAAA", "AAAAAAAAAA==", ""):
        r = _checked_urls(client, world.project, up["upload_id"], {1: bad})
        assert r.status_code == 400, bad
        body = r.json()
        assert "crc32" in str(body), (bad, body)
    r = client.post(url, {"part_numbers": [1], "parts": [
        {"part_number": 1, "crc32": "AAAAAA=="}]}, format="json")
    assert r.status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    r = _checked_urls(client, world.project, up["upload_id"], {1: "AAAAAA=="})
    assert r.status_code == 200
    r = client.post(api_url(world.project, "uploads"), {
        "path": "crc/md5.bin", "size_original": 1, "part_checksum": "md5"}, format="json")
    assert r.status_code == 400 and "part_checksum" in r.json()["detail"]


def test_switch_off_gives_unchecksummed_uploads(world, local_storage, settings):
    settings.DDS_STORAGE_PART_CHECKSUMS = False
    client = world.client()
    up = _start(client, world.project, "crc/off.bin", 1000, part_checksum="crc32")
    assert up["part_checksum"] is None
    assert Upload.objects.get(public_id=up["upload_id"]).part_checksum == ""
    r = client.post(api_url(world.project, f"uploads/{up['upload_id']}/part-urls"),
                    {"part_numbers": [1]}, format="json")
    assert r.status_code == 200


def test_checksummed_single_put(world, storage):
    """A small file's single PUT signs the CRC32 given in its start item (no extra
    request); the local store refuses other bytes of the same length, leaving nothing."""
    client = world.client()
    data = b"small and checksummed " * 100
    enc = encrypt(data, world.project.public_key)
    r = client.post(api_url(world.project, "uploads/batch"), {
        "single_put": True, "part_checksum": "crc32", "first_parts": 1,
        "uploads": [{"path": "crc/small.txt", "size_original": len(data),
                     "size_stored": len(enc.body), "crc32": crc(enc.body)},
                    {"path": "crc/bad.txt", "size_original": 3, "size_stored": 3,
                     "crc32": "zz"}]}, format="json")
    assert r.status_code == 200, r.json()
    item, bad = r.json()["uploads"]
    assert bad["error"]["status"] == 400 and "crc32" in bad["error"]["detail"]
    assert item["upload"]["part_checksum"] == "crc32" and item["parts"] == []
    url = item["put"]["url"]
    upload = Upload.objects.get(public_id=item["upload"]["upload_id"])
    if storage == "s3":
        assert "x-amz-checksum-crc32" in _signed_headers(url)
    else:
        damaged = bytearray(enc.body)
        damaged[0] ^= 1
        r = _put(url, bytes(damaged), crc(enc.body))
        assert r.status_code == 400 and "BadDigest" in r.text
        assert storage_for_project(world.project).head_size(
            world.project.bucket, upload.object_key) is None
    r = _put(url, enc.body, crc(enc.body))
    assert r.status_code == 200, r.text
    r = complete(client, world.project, upload.public_id, enc,
                 {1: r.headers["ETag"].strip('"')})
    assert r.status_code == 201, r.json()
