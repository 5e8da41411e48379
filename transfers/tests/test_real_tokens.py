"""Upload and download over real login tokens: the key session supplies the KEK."""

import base64

import httpx
import pytest

import c4gh
from projects.services import project_release
from projects.tests.helpers import login, make_world
from transfers.tests.helpers import api_url, upload


@pytest.mark.django_db
def test_staff_uploads_and_researcher_downloads_with_real_tokens(unit_a, s3_storage):
    world = make_world(unit_a)
    staff = login(world, world.staff)
    data = b"sequencing reads\n" * 5000
    upload(staff, world.project, "run/reads.txt", data)

    researcher = login(world, world.researcher)
    sk, pk = c4gh.generate_keypair()
    body = {"public_key": base64.b64encode(pk).decode(), "paths": ["run/reads.txt"]}
    # Not yet released: researchers see no data.
    assert researcher.post(api_url(world.project, "files/download"), body,
                           format="json").status_code == 403
    project_release(project=world.project, by=world.staff, notify=False)
    r = researcher.post(api_url(world.project, "files/download"), body, format="json")
    assert r.status_code == 200, r.content
    [item] = r.json()["files"]
    header = base64.b64decode(item["header"])
    segments = httpx.get(item["url"], timeout=30).content
    assert c4gh.decrypt_bytes(header + segments, sk,
                              compressed=item["compressed"]) == data

    # After logout the same token opens nothing: the download is refused, not served.
    assert researcher.post("/api/v1/auth/logout").status_code in (200, 204)
    again = researcher.post(api_url(world.project, "files/download"), body, format="json")
    assert again.status_code == 401
