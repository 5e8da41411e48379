"""Damaged files in the portal, over real HTTP: gunicorn (production's server) and the
development server `make run` uses. A download that fails verification after it started
must end as a broken transfer (the connection drops short of Content-Length, promptly),
one that fails before the first byte is a page that explains it, and the project page the
user comes back to says which file is damaged and whom to tell — alike for plain and
zstd-compressed files."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import httpx
import pytest

import c4gh
from tests.e2e.conftest import DDS
from tests.e2e.journey import MiB, create_project
from tests.e2e.server import ServerProcess

SEGMENT = c4gh.CIPHER_SEGMENT_SIZE


@pytest.fixture(params=["gunicorn", "runserver"], scope="module")
def server(request, tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp(request.param) / "var",
                         kind=request.param).start()
    yield proc
    proc.stop()


def _files(folder):
    folder.mkdir()
    (folder / "plain.bin").write_bytes(os.urandom(4 * MiB))
    # Hex text: zstd roughly halves it, so the stored stream still spans ~50 segments.
    (folder / "packed.txt").write_text("\n".join(os.urandom(32).hex() for _ in range(90_000)))
    (folder / "small.bin").write_bytes(os.urandom(100_000))
    (folder / "small.txt").write_text("short compressible note\n" * 2000)
    return folder


def _tamper(server, project, path, segment):
    (key, compressed), = server.sql(
        "SELECT f.object_key, f.compressed FROM transfers_file f JOIN projects_project p "
        "ON p.id = f.project_id WHERE p.public_id = ? AND f.path = ?", project, path)
    bucket, = server.sql("SELECT bucket FROM projects_project WHERE public_id = ?",
                         project)[0]
    target = server.var / "storage" / bucket / key
    data = bytearray(target.read_bytes())
    data[segment * SEGMENT + 50] ^= 0x01
    target.write_bytes(bytes(data))
    return bool(compressed)


def _portal_login(server, username) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=httpx.Timeout(15))

    def post(url, data):
        page = client.get(url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return client.post(url, data={**data, "csrfmiddlewaretoken": token},
                           headers={"Referer": server.url + url})

    email = f"{username}@example.org"
    seen = server.mail_count()
    r = post("/accounts/login/", {"username": username,
                                  "password": server.credentials()[username]})
    assert r.status_code == 302, r.text[:500]
    r = post("/accounts/login/code/", {"code": server.code_for(email, seen)})
    assert r.status_code == 302 and r.headers["location"] == "/", r.text[:500]
    return client


def test_damaged_downloads_fail_visibly_and_the_page_explains(server, tmp_path):
    staff = DDS(server.url, tmp_path / "staff", SimpleNamespace(
        username="demo-unitadmin", email="demo-unitadmin@example.org"),
        server.credentials()["demo-unitadmin"], server=server)
    staff.login()
    project = create_project(staff, "--force")
    src = _files(tmp_path / "data")
    r = staff("data", "put", "-p", project, "-s", str(src), "--silent")
    assert r.code == 0, r.err
    assert staff("project", "access", "grant", "-p", project, "-e",
                 "demo-researcher@example.org").code == 0
    assert staff("project", "status", "release", "-p", project).code == 0
    # Late segments of the big ones (the response has started), the first of the small.
    assert _tamper(server, project, "data/plain.bin", 40) is False
    assert _tamper(server, project, "data/packed.txt", 30) is True
    assert _tamper(server, project, "data/small.bin", 0) is False
    assert _tamper(server, project, "data/small.txt", 0) is True

    browser = _portal_login(server, "demo-researcher")
    download = f"/projects/{project}/download/file"
    for path in ("data/plain.bin", "data/packed.txt"):
        got = 0
        with browser.stream("GET", download, params={"path": path}) as r:
            assert r.status_code == 200
            announced = int(r.headers["Content-Length"])
            # The connection drops (no hanging until a timeout): the client sees a body
            # shorter than announced, so no complete file is ever saved.
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in r.iter_bytes():
                    got += len(chunk)
        assert 0 < got < announced, (path, got, announced)

    for path in ("data/small.bin", "data/small.txt"):
        r = browser.get(download, params={"path": path})
        assert r.status_code == 502, (path, r.status_code)
        assert "File damaged" in r.text and path in r.text
        assert "facility@example.org" in r.text  # whom to tell (the demo unit's contact)

    page = browser.get(f"/projects/{project}/")
    assert page.status_code == 200
    assert "Files are damaged" in page.text and "facility@example.org" in page.text
    for path in ("data/plain.bin", "data/packed.txt", "data/small.bin", "data/small.txt"):
        assert path in page.text
    assert not [line for line in server.log().splitlines() if '" 500 ' in line]
