"""Deliveries made with the real upload services on the local backend, and portal logins."""

from __future__ import annotations

from accounts.tests.helpers import last_code
from transfers.services import CompleteInput, upload_complete, upload_start
from transfers.storage import storage_for_project
from transfers.tests.helpers import encrypt


def deliver(project, staff, staff_kek, files: dict[str, bytes], *, compress=False) -> None:
    """Upload ``files`` as the facility does: encrypt to the project key, start, send the
    parts (through the local backend's part writer, which its signed PUT URL calls) and
    complete with the header, which the service checks with the uploader's keys."""
    backend = storage_for_project(project)
    for path, data in files.items():
        enc = encrypt(data, project.public_key, compress=compress)
        upload = upload_start(project=project, by=staff, path=path, size_original=len(data))
        size = upload.part_size
        chunks = [enc.body[i:i + size] for i in range(0, len(enc.body), size)] or [b""]
        parts = [(n, backend.write_part(project.bucket, upload.multipart_id, n, [chunk]))
                 for n, chunk in enumerate(chunks, start=1)]
        upload_complete(upload=upload, by=staff, kek=staff_kek, data=CompleteInput(
            parts=parts, header=enc.header, checksum=enc.sha256,
            size_original=enc.size_original, size_stored=len(enc.body),
            compressed=enc.compressed))


def portal_login(client, user, password) -> None:
    r = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert r.status_code == 302, r.content
    r = client.post("/accounts/login/code/", {"code": last_code(user.email)})
    assert r.status_code == 302 and r.url == "/", r.content
