"""A delivery as people do it: unit staff put a folder with `dds`, release it, and a
researcher gets it back byte for byte — plus resume, tampering and keep-encrypted."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import zstandard

from transfers.models import File, Upload, UploadStatus
from transfers.storage import storage_for_project

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _mixed_folder(root: Path) -> Path:
    data = root / "delivery"
    (data / "reads" / "lane1" / "deep").mkdir(parents=True)
    (data / "données" / "日本").mkdir(parents=True)
    (data / "empty.txt").write_bytes(b"")
    (data / "reads" / "random.bin").write_bytes(os.urandom(100 * MB))
    text = "".join(f"@read{i}\tACGTTGCA{i % 97}\tsample=ÅÄÖ\n" for i in range(200_000))
    (data / "reads" / "lane1" / "log.txt").write_text(text)
    (data / "reads" / "lane1" / "deep" / "reads.fastq.gz").write_bytes(
        gzip.compress(text.encode()[: 2 * MB], compresslevel=1))
    (data / "données" / "résumé ñ.txt").write_text("Ünïcödé — ok\n" * 1000)
    (data / "données" / "日本" / "ファイル.csv").write_text("a,b\n1,2\n")
    return data


def _project(staff) -> str:
    r = staff("project", "create", "-t", "E2E delivery", "-pi", "Prof. P", "--force", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)["id"]


def _s3(moto_endpoint):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing-key-id",
                        aws_secret_access_key="testing-secret")


def test_deliver_folder_roundtrip(e2e, tmp_path):
    staff, researcher = e2e.staff, e2e.researcher
    staff.login()
    project = _project(staff)
    source = _mixed_folder(tmp_path / "src")

    r = staff("data", "put", "-p", project, "-s", str(source), "--num-threads", "3",
              "--silent")
    assert r.code == 0, r.err
    assert "6 file(s) uploaded" in r.err

    # The catalogue holds every file, compressible ones compressed, the rest not.
    r = staff("data", "ls", "-p", project, "delivery", "--tree", "--json")
    assert r.code == 0, r.err
    listed = {f["path"]: f for f in json.loads(r.out)}
    assert set(listed) == {f"delivery/{p}" for p in _tree(source)}
    assert listed["delivery/reads/lane1/log.txt"]["compressed"] is True
    assert listed["delivery/reads/random.bin"]["compressed"] is False
    assert listed["delivery/reads/lane1/deep/reads.fastq.gz"]["compressed"] is False

    # A second put of the same folder skips what is stored and says so.
    r = staff("data", "put", "-p", project, "-s", str(source), "--silent")
    assert r.code == 0, r.err
    assert "already in the project" in r.err

    r = staff("project", "access", "grant", "-p", project, "-e", researcher.user.email)
    assert r.code == 0, r.err
    r = staff("project", "status", "release", "-p", project, "--deadline", "10")
    assert r.code == 0, r.err
    assert "Available" in r.err

    researcher.login()
    r = researcher("ls", "--json")
    assert r.code == 0 and project in {p["id"] for p in json.loads(r.out)}
    out = tmp_path / "out"
    r = researcher("data", "get", "-p", project, "--get-all", "-d", str(out), "--silent")
    assert r.code == 0, r.err
    assert _tree(out / "delivery") == _tree(source)
    assert not [p for p in out.rglob("*") if p.name.endswith(".dds-partial")]

    # Keep-encrypted, addressed to a key made by the reference tool, which decrypts it.
    sk, pk = tmp_path / "archive.sec", tmp_path / "archive.pub"
    subprocess.run([Path(sys.executable).with_name("crypt4gh-keygen"), "--nocrypt", "-f",
                    "--sk", sk, "--pk", pk], check=True, capture_output=True)
    enc_out = tmp_path / "enc"
    r = researcher("data", "get", "-p", project, "-s", "delivery/reads/lane1",
                   "-s", "delivery/données/résumé ñ.txt", "-d", str(enc_out),
                   "--keep-encrypted", "--recipient-pk", str(pk), "--silent")
    assert r.code == 0, r.err
    produced = sorted(p.relative_to(enc_out).as_posix() for p in enc_out.rglob("*")
                      if p.is_file())
    assert produced == ["delivery/données/résumé ñ.txt.zst.c4gh",
                        "delivery/reads/lane1/deep/reads.fastq.gz.c4gh",
                        "delivery/reads/lane1/log.txt.zst.c4gh"]
    for rel in produced:
        with open(enc_out / rel, "rb") as fh:
            plain = subprocess.run([Path(sys.executable).with_name("crypt4gh"), "decrypt",
                                    "--sk", sk], stdin=fh, capture_output=True, check=True
                                   ).stdout
        if rel.endswith(".zst.c4gh"):
            plain = zstandard.ZstdDecompressor().decompressobj().decompress(plain)
        original = source / rel.removeprefix("delivery/").removesuffix(".c4gh").removesuffix(
            ".zst")
        assert plain == original.read_bytes(), rel


def test_put_killed_half_way_resumes_with_missing_parts_only(e2e, tmp_path, moto_endpoint,
                                                             settings):
    staff = e2e.staff
    staff.login()
    project = _project(staff)
    # Small parts (the S3 minimum) and a file of ~19 of them: the kill after 3 stored parts
    # leaves at most the client's in-flight parts (6 with one thread) to land afterwards.
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 80
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(100 * MB))

    proc = staff.popen("data", "put", "-p", project, "-s", str(big), "--silent",
                       "--num-threads", "1")
    upload = None
    before: dict[int, str] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        upload = upload or Upload.objects.filter(status=UploadStatus.IN_PROGRESS).first()
        if upload is not None:
            backend = storage_for_project(upload.project)
            parts = backend.list_parts(upload.project.bucket, upload.object_key,
                                       upload.multipart_id)
            if len(parts) >= 3:
                proc.send_signal(signal.SIGKILL)  # no clean-up at all: a crash
                proc.wait()
                before = {p.number: p.etag for p in backend.list_parts(
                    upload.project.bucket, upload.object_key, upload.multipart_id)}
                break
        time.sleep(0.02)
    assert before and len(before) < upload.reserved_bytes // upload.part_size, \
        "the put was not killed half-way"

    r = staff("data", "put", "-p", project, "-s", str(big), "--silent")
    assert r.code == 0, r.err
    # A part in flight at the kill may still land after it, so at least the parts seen.
    resumed = re.search(r"Resumed big.bin: (\d+) of (\d+) parts already stored", r.err)
    assert resumed and len(before) <= int(resumed.group(1)) < int(resumed.group(2)), r.err
    f = File.objects.get(project__public_id=project, path="big.bin")
    assert f.object_key == upload.object_key  # the same upload was finished
    # The parts stored before the kill are in the final object unchanged (a re-upload
    # would have new nonces, hence other bytes and another MD5).
    body = _s3(moto_endpoint).get_object(Bucket=f.project.bucket, Key=f.object_key)[
        "Body"].read()
    for number, etag in before.items():
        chunk = body[(number - 1) * upload.part_size: number * upload.part_size]
        assert hashlib.md5(chunk, usedforsecurity=False).hexdigest() == etag, number

    r = staff("data", "get", "-p", project, "-s", "big.bin", "-d", str(tmp_path / "back"),
              "--silent")
    assert r.code == 0, r.err
    assert (tmp_path / "back" / "big.bin").read_bytes() == big.read_bytes()


def test_tampered_object_fails_that_file_only(e2e, tmp_path, moto_endpoint):
    staff = e2e.staff
    staff.login()
    project = _project(staff)
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.bin").write_bytes(os.urandom(300_000))
    (src / "bad.bin").write_bytes(os.urandom(300_000))
    r = staff("data", "put", "-p", project, "-s", str(src / "good.bin"), "-s",
              str(src / "bad.bin"), "--silent")
    assert r.code == 0, r.err

    bad = File.objects.get(project__public_id=project, path="bad.bin")
    s3 = _s3(moto_endpoint)
    body = bytearray(s3.get_object(Bucket=bad.project.bucket, Key=bad.object_key)["Body"]
                     .read())
    body[100_000] ^= 0x01
    s3.put_object(Bucket=bad.project.bucket, Key=bad.object_key, Body=bytes(body))

    out = tmp_path / "out"
    r = staff("data", "get", "-p", project, "--get-all", "-d", str(out), "--silent")
    assert r.code != 0
    assert "bad.bin" in r.err and "tampered" in r.err
    assert (out / "good.bin").read_bytes() == (src / "good.bin").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["good.bin"]  # nothing half-written


def test_bad_input_is_reported_and_the_rest_continues(e2e, tmp_path):
    staff = e2e.staff
    r = staff("project", "ls")
    assert r.code != 0 and "dds auth login" in r.err

    staff.login()
    project = _project(staff)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_text("fine\n")
    (src / "sub" / "loop").symlink_to(src)  # a folder link back to an ancestor
    (src / "dangling").symlink_to(tmp_path / "nowhere")
    r = staff("data", "put", "-p", project, "-s", str(src), "-s", str(tmp_path / "missing"),
              "--silent")
    assert r.code != 0
    assert "missing: no such file or directory" in r.err
    assert "symbolic link loop" in r.err and "broken symbolic link" in r.err
    r = staff("data", "ls", "-p", project, "src", "--json")
    assert [f["name"] for f in json.loads(r.out)["files"]] == ["ok.txt"]

    # Uploads are closed once the project is released: the server's reason is shown.
    staff("project", "status", "release", "-p", project)
    (tmp_path / "late.txt").write_text("late\n")
    r = staff("data", "put", "-p", project, "-s", str(tmp_path / "late.txt"), "--silent")
    assert r.code != 0 and "late.txt" in r.err

    # A token the server no longer honours (the session was ended elsewhere): the user
    # is told to log in again.
    token = staff.config / "token.json"
    saved = token.read_bytes()
    assert staff("auth", "logout").code == 0 and not token.exists()
    token.write_bytes(saved)
    token.chmod(0o600)
    r = staff("data", "ls", "-p", project)
    assert r.code != 0 and "expired or ended" in r.err and "dds auth login" in r.err


def test_put_over_s3_checksums_its_parts(e2e, tmp_path, moto_endpoint, settings,
                                         monkeypatch):
    """`dds data put` asks for part checksums: the upload is checksummed, moto computed
    the object's composite CRC32 from the bytes it got, and every part's URL was asked
    for once (in groups where parts waited for each other)."""
    from transfers import api  # (the live server runs in this process)

    calls: list[int] = []
    real = api.upload_part_urls

    def counted(**kwargs):
        calls.append(len(kwargs["part_numbers"]))
        return real(**kwargs)

    monkeypatch.setattr(api, "upload_part_urls", counted)
    staff = e2e.staff
    staff.login()
    project = _project(staff)
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 80
    settings.DDS_STORAGE_PART_CHECKSUMS = True  # the operator's switch (default off)
    big = tmp_path / "sums.bin"
    big.write_bytes(os.urandom(64 * MB))
    r = staff("data", "put", "-p", project, "-s", str(big), "--silent")
    assert r.code == 0, r.err
    f = File.objects.get(project__public_id=project, path="sums.bin")
    upload = Upload.objects.get(object_key=f.object_key)
    assert upload.part_checksum == "crc32"
    parts = -(-f.size_stored // upload.part_size)
    head = _s3(moto_endpoint).head_object(Bucket=f.project.bucket, Key=f.object_key,
                                          ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32")
    # (fewer requests than parts when parts wait for each other: timing, not asserted)
    assert sum(calls) == parts and len(calls) <= parts, (calls, parts)
    print(f"part-urls requests: {len(calls)} for {parts} parts: {calls}")
    r = staff("data", "get", "-p", project, "-s", "sums.bin", "-d", str(tmp_path / "back"),
              "--silent")
    assert r.code == 0, r.err
    assert (tmp_path / "back" / "sums.bin").read_bytes() == big.read_bytes()
