"""Server-side streaming downloads: decrypted bytes, zip of a folder, tamper detection."""

from __future__ import annotations

import io
import zipfile

import pytest

import c4gh
from portal.tests.conftest import FILES
from transfers.models import File
from transfers.storage import storage_for_project

pytestmark = pytest.mark.django_db


def _url(delivery, kind):
    return f"/projects/{delivery.project.public_id}/download/{kind}"


def test_file_download_streams_the_original_bytes(delivery):
    client = delivery.client(delivery.researcher)
    r = client.get(_url(delivery, "file"), {"path": "reads/sample1.fastq"})
    assert r.status_code == 200 and r.streaming
    assert r.headers["Content-Disposition"] == 'attachment; filename="sample1.fastq"'
    assert int(r.headers["Content-Length"]) == len(FILES["reads/sample1.fastq"])
    assert r.headers["Cache-Control"] == "no-store"
    assert b"".join(r.streaming_content) == FILES["reads/sample1.fastq"]
    f = File.objects.get(project=delivery.project, path="reads/sample1.fastq")
    assert f.last_downloaded_at is not None  # recorded by files_download_prepare


def test_compressed_file_is_decompressed(delivery):
    r = delivery.client().get(_url(delivery, "file"), {"path": "reads/big.txt"})
    assert b"".join(r.streaming_content) == b"compressible line\n" * 40000


def test_folder_downloads_as_a_zip(delivery):
    r = delivery.client().get(_url(delivery, "folder"), {"folder": "reads"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    assert 'filename="reads.zip"' in r.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    assert names == ["reads/big.txt", "reads/qc/report.html", "reads/sample1.fastq",
                     "reads/sample2.fastq"]
    assert archive.read("reads/qc/report.html") == FILES["reads/qc/report.html"]
    assert archive.read("reads/sample1.fastq") == FILES["reads/sample1.fastq"]


def test_whole_project_zip_in_batches(delivery, monkeypatch):
    from portal import downloads

    monkeypatch.setattr(downloads, "ZIP_BATCH", 2)  # several files_download_prepare calls
    r = delivery.client().get(_url(delivery, "folder"))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
    assert len(archive.namelist()) == 5
    assert archive.read(f"{delivery.project.public_id}/README.txt") == FILES["README.txt"]


def _tamper(delivery, path, offset=100):
    f = File.objects.get(project=delivery.project, path=path)
    target = storage_for_project(delivery.project).object_path(delivery.project.bucket,
                                                               f.object_key)
    data = bytearray(target.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))


def _consume(response) -> tuple[bytes, Exception | None]:
    got = bytearray()
    try:
        for chunk in response.streaming_content:
            got += chunk
    except c4gh.C4GHError as exc:
        return bytes(got), exc
    return bytes(got), None


def _damage_notice(client, delivery) -> str:
    page = client.get(f"/projects/{delivery.project.public_id}/").content.decode()
    return page


def test_tampered_object_cuts_the_transfer_and_the_page_says_why(delivery):
    # Damage in segment 36 of 42: the response has started when it shows.
    from core.metrics import TRANSFER_FAILURES

    damaged = TRANSFER_FAILURES.labels(direction="download", reason="damaged")
    before = damaged._value.get()
    _tamper(delivery, "reads/sample1.fastq", offset=36 * c4gh.CIPHER_SEGMENT_SIZE + 100)
    client = delivery.client()
    r = client.get(_url(delivery, "file"), {"path": "reads/sample1.fastq"})
    assert r.status_code == 200
    got, error = _consume(r)
    assert isinstance(error, c4gh.SegmentAuthError)
    assert damaged._value.get() == before + 1  # dds_transfer_failures{reason="damaged"}
    assert 0 < len(got) < int(r.headers["Content-Length"])
    page = _damage_notice(client, delivery)
    assert "A file is damaged" in page and "reads/sample1.fastq" in page
    assert delivery.unit.contact_email in page
    # Shown once: the next visit is the plain page again.
    assert "is damaged" not in _damage_notice(client, delivery)


@pytest.mark.parametrize("path", ["reads/sample2.fastq", "reads/big.txt"])
def test_damage_before_the_first_byte_is_an_explanation_not_a_500(delivery, path):
    # A small plain file and a compressed one, damaged in their first segment: nothing
    # was sent yet, so the answer is the page that explains it.
    _tamper(delivery, path)
    client = delivery.client()
    r = client.get(_url(delivery, "file"), {"path": path})
    assert r.status_code == 502 and not r.streaming
    body = r.content.decode()
    assert "File damaged" in body and path in body and delivery.unit.contact_email in body
    assert "Content-Disposition" not in r.headers


def test_checksum_mismatch_withholds_the_end_of_the_file(delivery):
    # Segments authenticate, but the SHA-256 is not the uploaded one: the last piece
    # never leaves the server, so the download cannot look complete.
    File.objects.filter(path="README.txt").update(checksum="0" * 64)
    r = delivery.client().get(_url(delivery, "file"), {"path": "README.txt"})
    assert r.status_code == 502 and b"README.txt" in r.content


def test_tampered_file_breaks_the_zip(delivery):
    _tamper(delivery, "reads/sample2.fastq")
    client = delivery.client()
    r = client.get(_url(delivery, "folder"), {"folder": "reads"})
    got, error = _consume(r)
    assert isinstance(error, c4gh.SegmentAuthError)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(got))
    assert "reads/sample2.fastq" in _damage_notice(client, delivery)


@pytest.mark.parametrize("kind, query, status", [
    ("file", {"path": "../x"}, 400), ("file", {"path": ""}, 400),
    ("file", {"path": "nope.txt"}, 404), ("folder", {"folder": "nope"}, 404),
])
def test_bad_download_requests_are_4xx(delivery, kind, query, status):
    r = delivery.client().get(_url(delivery, kind), query)
    assert r.status_code == status and not r.streaming


def test_missing_object_is_a_503_page(delivery):
    f = File.objects.get(project=delivery.project, path="README.txt")
    storage_for_project(delivery.project).delete_objects(delivery.project.bucket,
                                                         [f.object_key])
    r = delivery.client().get(_url(delivery, "file"), {"path": "README.txt"})
    assert r.status_code == 503 and b"try again later" in r.content


def test_download_needs_a_key_session(delivery):
    client = delivery.client()
    client.cookies.pop("dds_ks")
    # Without its sealed key cookie the session is no login at all (accounts.middleware).
    r = client.get(_url(delivery, "file"), {"path": "README.txt"})
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert not r.content
