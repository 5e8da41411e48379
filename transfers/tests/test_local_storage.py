"""The local backend's signed object URLs, over real HTTP (Django's live server)."""

from __future__ import annotations

import base64

import httpx
import pytest

import c4gh
from keys.services import project_access_grant
from keys.tests.helpers import keyed_user
from projects.models import Project, ProjectMembership, ProjectStatus
from transfers.errors import NotAllowed
from transfers.services import files_download_prepare
from transfers.storage import LocalBackend
from transfers.tests.helpers import api_url, upload

pytestmark = pytest.mark.django_db(transaction=True)


def _object_url(bucket="b", key="k", body=b"0123456789", expires=60):
    backend = LocalBackend()
    backend.create_bucket(bucket)
    backend.object_path(bucket, key).write_bytes(body)
    return backend.presign_get(bucket, key, expires)


def test_ranges(local_storage):
    url = _object_url()
    assert httpx.get(url).content == b"0123456789"
    r = httpx.get(url, headers={"Range": "bytes=2-4"})
    assert (r.status_code, r.content, r.headers["Content-Range"]) == (206, b"234",
                                                                     "bytes 2-4/10")
    assert httpx.get(url, headers={"Range": "bytes=-3"}).content == b"789"
    assert httpx.get(url, headers={"Range": "bytes=7-"}).content == b"789"
    assert httpx.get(url, headers={"Range": "bytes=20-"}).status_code == 416
    assert httpx.get(url, headers={"Range": "pages=1-2"}).status_code == 416


def test_tampered_or_misused_tokens_are_refused(local_storage):
    url = _object_url()
    assert httpx.get(url[:-3] + "abc").status_code == 403
    # A GET token is not a PUT token.
    token = url.rsplit("/", 1)[1]
    put_url = url.replace(f"/objects/{token}", f"/parts/{token}")
    assert httpx.put(put_url, content=b"x").status_code == 403
    assert httpx.put(url, content=b"x").status_code == 405
    # Nor is a PUT token (which carries the object's bucket and key too) a GET token.
    backend = LocalBackend()
    upload_id = backend.start_multipart("b", "k2")
    part_url = backend.presign_part("b", "k2", upload_id, 1, 60)
    part_token = part_url.rsplit("/", 1)[1]
    as_get = part_url.replace(f"/parts/{part_token}", f"/objects/{part_token}")
    backend.object_path("b", "k2").write_bytes(b"secret segments")
    assert httpx.get(as_get).status_code == 403


def test_researcher_downloads_only_when_available(world, local_storage):
    researcher, _, kek = keyed_user()
    ProjectMembership.objects.create(project=world.project, user=researcher)
    project_access_grant(project=world.project, grantee=researcher, granter=world.staff,
                         granter_kek=world.staff_kek)
    world.add_keyed(researcher, kek)
    upload(world.client(), world.project, "d/r.txt", b"hello researcher")
    sk, pk = c4gh.generate_keypair()
    body = {"public_key": base64.b64encode(pk).decode(), "paths": ["d/r.txt", "d/none"]}
    rc = world.client(researcher)
    assert rc.post(api_url(world.project, "files/download"), body,
                   format="json").status_code == 403
    Project.objects.filter(pk=world.project.pk).update(status=ProjectStatus.AVAILABLE,
                                                       released=True)
    r = rc.post(api_url(world.project, "files/download"), body, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["missing"] == ["d/none"]
    item = r.json()["files"][0]
    data = httpx.get(item["url"]).content
    assert c4gh.decrypt_bytes(base64.b64decode(item["header"]) + data, sk) == \
        b"hello researcher"
    # The project private key never leaves the server; a user without a grant gets 403.
    stranger, _, skek = keyed_user()
    with pytest.raises(NotAllowed):
        files_download_prepare(project=world.project, user=stranger, kek=skek,
                               recipient_public_key=pk)


def test_a_part_url_takes_at_most_the_parts_size(local_storage):
    """The upload's part size is signed into the local part URL: a longer body is 413, a
    body without a declared length 411, and neither leaves anything behind."""
    backend = LocalBackend()
    backend.create_bucket("cap")
    upload_id = backend.start_multipart("cap", "k3")
    url = backend.presign_part("cap", "k3", upload_id, 1, 60, max_bytes=1024)
    assert httpx.put(url, content=b"x" * 2048).status_code == 413

    def stream():
        for _ in range(24):
            yield b"y" * (1024 * 1024)

    r = httpx.put(url, content=stream(), timeout=30)  # chunked: no Content-Length
    assert r.status_code == 411  # as S3: a part must declare its length
    assert not list(backend._mp_dir("cap", upload_id).glob("1*"))
    ok = httpx.put(url, content=b"z" * 1024)
    assert ok.status_code == 200 and ok.headers["ETag"]
