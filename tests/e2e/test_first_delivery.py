"""Issue 12 on PostgreSQL with S3 in eu-north-1, and the `dds` friction found on the way:
each point run through the real command against the live server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from accounts.models import Role
from accounts.tests.factories import UnitFactory
from cli.errors import Exit
from keys.tests.helpers import keyed_user
from tests.e2e.conftest import DDS
from tests.e2e.journey import MiB, create_project, deliver_and_get_back, journey_folder, tree
from transfers.models import File, Upload, UploadStatus
from transfers.storage import storage_for_project
from transfers.tests.conftest import S3_OTHER_REGION

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(sys.executable).parent


def _s3(moto_endpoint, region=S3_OTHER_REGION):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=region,
                        aws_access_key_id="testing-key-id",
                        aws_secret_access_key="testing-secret")


def test_first_delivery_on_postgresql_with_s3_in_eu_north_1(e2e_region, tmp_path,
                                                           moto_endpoint):
    staff, researcher = e2e_region.staff, e2e_region.researcher
    staff.login()
    researcher.login()
    source = journey_folder(tmp_path / "src")

    project = deliver_and_get_back(staff, researcher, source, tmp_path / "out", threads=4)

    bucket = File.objects.filter(project__public_id=project).first().project.bucket
    s3 = _s3(moto_endpoint)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == S3_OTHER_REGION
    stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    catalogue = sorted(File.objects.filter(project__public_id=project)
                       .values_list("object_key", flat=True))
    assert len(catalogue) == len(tree(source)) and stored == catalogue  # nothing left over
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


# --------------------------------------------------------------------------- friction


class _HtmlErrors(BaseHTTPRequestHandler):
    """Answers everything like Django's debug page for a crash."""

    def _answer(self):
        body = (b"<!DOCTYPE html><html><head><title>OperationalError at /api/v1/auth/login"
                b"</title></head><body>" + b"<p>database is locked</p>" * 50 + b"</body>")
        self.send_response(500)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_a_non_json_error_is_reported_by_status_not_pasted(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlErrors)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        runner = DDS(url, tmp_path / "cfg", SimpleNamespace(username="u", email="u@x"), "pw")
        proc = runner.popen("auth", "login", "-u", "u", stdin=subprocess.PIPE)
        _, stderr = proc.communicate("pw\n", timeout=60)
    finally:
        server.shutdown()
    assert proc.returncode == Exit.REFUSED
    assert "HTTP 500 Internal Server Error" in stderr
    assert "<" not in stderr and "database is locked" not in stderr


def test_refusals_say_that_a_rerun_will_not_help(e2e, tmp_path):
    staff = e2e.staff
    staff.login()
    project = create_project(staff, "--force")
    (tmp_path / "a.txt").write_text("a\n")
    assert staff("data", "put", "-p", project, "-s", str(tmp_path / "a.txt"),
                 "--silent").code == 0
    assert staff("project", "status", "release", "-p", project).code == 0
    (tmp_path / "late.txt").write_text("late\n")
    (tmp_path / "late-big.bin").write_bytes(os.urandom(2 * MiB))  # the one-file path
    r = staff("data", "put", "-p", project, "-s", str(tmp_path / "late.txt"),
              "-s", str(tmp_path / "late-big.bin"), "--silent")
    assert r.code == Exit.PARTIAL
    assert "In Progress" in r.err and "late.txt" in r.err and "late-big.bin" in r.err
    assert "To retry" not in r.err and "will not help" in r.err


def test_project_create_names_the_force_option(e2e, tmp_path):
    unit = UnitFactory()  # two Unit Admins, fewer than recommended: asked to confirm
    admin, password, _ = keyed_user(Role.UNIT_ADMIN, unit=unit)
    keyed_user(Role.UNIT_ADMIN, unit=unit)
    runner = DDS(e2e.url, tmp_path / "solo", admin, password)
    runner.login()
    r = runner("project", "create", "-t", "Solo")
    assert r.code == Exit.REFUSED and "--force" in r.err and "Confirm (force)" not in r.err
    r = runner("project", "create", "-t", "Solo", "--force")
    assert r.code == 0, r.err


def test_deadlines_print_the_same_in_release_and_status(e2e, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # neither the server's zone nor UTC
    staff = e2e.staff
    staff.login()
    project = create_project(staff, "--force")
    r = staff("project", "status", "release", "-p", project, "--deadline", "5")
    assert r.code == 0, r.err
    released = re.search(r"deadline (\d{4}-\d\d-\d\d \d\d:\d\d \S+)\)", r.err)
    assert released and released.group(1).endswith("JST"), r.err
    r = staff("project", "status", "display", "-p", project)
    assert r.code == 0 and f"deadline {released.group(1)}" in r.out, (r.out, released)


def test_break_on_fail_leaves_no_partial_file(e2e, tmp_path, moto_endpoint):
    staff = e2e.staff
    staff.login()
    project = create_project(staff, "--force")
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.bin").write_bytes(os.urandom(200_000))
    (src / "good.bin").write_bytes(os.urandom(30 * MiB))
    assert staff("data", "put", "-p", project, "-s", str(src / "bad.bin"), "-s",
                 str(src / "good.bin"), "--silent").code == 0
    bad = File.objects.get(project__public_id=project, path="bad.bin")
    s3 = _s3(moto_endpoint, "us-east-1")
    body = bytearray(s3.get_object(Bucket=bad.project.bucket, Key=bad.object_key)["Body"]
                     .read())
    body[10] ^= 0x01  # the first segment: it fails at once, good.bin is still on its way
    s3.put_object(Bucket=bad.project.bucket, Key=bad.object_key, Body=bytes(body))

    out = tmp_path / "out"
    r = staff("data", "get", "-p", project, "--get-all", "-d", str(out), "--break-on-fail",
              "--num-threads", "2", "--silent")
    assert r.code == Exit.PARTIAL and "bad.bin" in r.err
    left = [p.name for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not [n for n in left if n.endswith(".dds-partial")], left
    assert left in ([], ["good.bin"])  # good.bin complete, or not at all
    if not left:
        assert "--break-on-fail" in r.err


def test_keep_encrypted_hint_mentions_zstd(e2e, tmp_path):
    staff = e2e.staff
    staff.login()
    project = create_project(staff, "--force")
    (tmp_path / "notes.txt").write_text("compressible line\n" * 20000)
    assert staff("data", "put", "-p", project, "-s", str(tmp_path / "notes.txt"),
                 "--silent").code == 0
    r = staff("data", "get", "-p", project, "-s", "notes.txt", "-d", str(tmp_path / "enc"),
              "--keep-encrypted", "--silent")
    assert r.code == 0, r.err
    assert (tmp_path / "enc" / "notes.txt.zst.c4gh").exists()
    assert "crypt4gh decrypt" in r.err and "zstd -d" in r.err


def test_public_key_and_put_already_encrypted(e2e, tmp_path):
    staff, researcher = e2e.staff, e2e.researcher
    staff.login()
    project = create_project(staff, "--force")
    pub = tmp_path / "project.pub"
    r = staff("project", "public-key", "-p", project, "-o", str(pub))
    assert r.code == 0, r.err
    r = staff("project", "public-key", "-p", project)
    assert r.code == 0 and r.out == pub.read_text()
    assert r.out.startswith("-----BEGIN CRYPT4GH PUBLIC KEY-----")

    src = tmp_path / "src"
    src.mkdir()
    sizes = {"empty.dat": 0, "small.dat": 1000, "edge.dat": 65537, "big.dat": 9 * MiB}
    for name, size in sizes.items():
        (src / name).write_bytes(os.urandom(size))
        with open(src / name, "rb") as plain, open(src / f"{name}.c4gh", "wb") as enc:
            subprocess.run([BIN / "crypt4gh", "encrypt", "--recipient_pk", pub],
                           stdin=plain, stdout=enc, check=True)
    # A file for another key, and one that is no Crypt4GH file at all.
    other_sk, other_pk = tmp_path / "other.sec", tmp_path / "other.pub"
    subprocess.run([BIN / "crypt4gh-keygen", "--nocrypt", "-f", "--sk", other_sk,
                    "--pk", other_pk], check=True, capture_output=True)
    (tmp_path / "wrong").mkdir()
    with open(src / "small.dat", "rb") as plain, \
            open(tmp_path / "wrong" / "foreign.dat.c4gh", "wb") as enc:
        subprocess.run([BIN / "crypt4gh", "encrypt", "--recipient_pk", other_pk],
                       stdin=plain, stdout=enc, check=True)
    (tmp_path / "wrong" / "plain.txt").write_text("not encrypted\n")

    r = staff("data", "put", "-p", project, "--already-encrypted", "--silent",
              *[x for name in sizes for x in ("-s", str(src / f"{name}.c4gh"))])
    assert r.code == 0 and "4 file(s) uploaded" in r.err, r.err

    r = staff("data", "put", "-p", project, "--already-encrypted", "--silent",
              "-s", str(tmp_path / "wrong"))
    assert r.code == Exit.PARTIAL
    assert "wrong/foreign.dat: refused before upload" in r.err
    assert "not addressed to the key of" in r.err and "dds project public-key" in r.err
    assert "wrong/plain.txt: is not a Crypt4GH file" in r.err
    assert not Upload.objects.filter(path__startswith="wrong/").exists()  # nothing started

    listed = {f["path"] for f in json.loads(staff("data", "ls", "-p", project, "--tree",
                                                  "--json").out)}
    assert listed == set(sizes)
    assert staff("project", "access", "grant", "-p", project, "-e",
                 researcher.user.email).code == 0
    assert staff("project", "status", "release", "-p", project).code == 0
    researcher.login()
    out = tmp_path / "out"
    r = researcher("data", "get", "-p", project, "--get-all", "-d", str(out), "--silent")
    assert r.code == 0, r.err
    for name in sizes:
        assert (out / name).read_bytes() == (src / name).read_bytes(), name


def test_an_upload_the_server_dropped_is_restarted(e2e, tmp_path, settings):
    """The journal knows an upload whose multipart storage no longer has (the server
    answers 400 NoSuchUpload): the rerun says so, starts that file over and finishes."""
    staff = e2e.staff
    staff.login()
    project = create_project(staff, "--force")
    settings.DDS_UPLOAD_MIN_PART_SEGMENTS = 80
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * MiB))
    proc = staff.popen("data", "put", "-p", project, "-s", str(big), "--silent",
                       "--num-threads", "1")
    upload = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        upload = upload or Upload.objects.filter(status=UploadStatus.IN_PROGRESS).first()
        if upload is not None:
            backend = storage_for_project(upload.project)
            if backend.list_parts(upload.project.bucket, upload.object_key,
                                  upload.multipart_id):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
        time.sleep(0.02)
    assert upload is not None and proc.returncode == -signal.SIGKILL, "not killed half-way"
    # Storage lost the multipart upload; the catalogue still says it is in progress.
    backend.abort_multipart(upload.project.bucket, upload.object_key, upload.multipart_id)

    r = staff("data", "put", "-p", project, "-s", str(big), "--silent")
    assert r.code == 0, r.err
    assert "Restarting big.bin" in r.err and "NoSuchUpload" in r.err
    f = File.objects.get(project__public_id=project, path="big.bin")
    assert f.object_key != upload.object_key
    assert Upload.objects.get(pk=upload.pk).status == UploadStatus.ABORTED
    assert backend.list_objects(f.project.bucket, 10) == [f.object_key]
    assert backend.list_multipart(f.project.bucket, 10) == []
    r = staff("data", "get", "-p", project, "-s", "big.bin", "-d", str(tmp_path / "back"),
              "--silent")
    assert r.code == 0 and (tmp_path / "back" / "big.bin").read_bytes() == big.read_bytes()


def test_dds_is_the_virtualenvs_console_script():
    """Where docs/cli.md says it is: `make` installs `dds` next to the venv's python."""
    dds = BIN / "dds"
    r = subprocess.run([dds, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "project" in r.stdout and "data" in r.stdout
