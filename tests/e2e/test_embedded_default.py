"""The README's own default, as `make run` starts it: SQLite, local storage, DEBUG=1, the
development server — in a process of its own (pytest's database stays PostgreSQL), with
the demo users, driven by the real `dds` command."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.e2e.conftest import DDS
from tests.e2e.journey import MiB, deliver_and_get_back, journey_folder, tree
from tests.e2e.server import ServerProcess


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("embedded") / "var").start()
    yield server
    server.stop()


def _demo(server, tmp, username: str) -> DDS:
    user = SimpleNamespace(username=username, email=f"{username}@example.org")
    runner = DDS(server.url, tmp / f"{username}-config", user,
                 server.credentials()[username], server=server)
    runner.login()
    return runner


def _project_objects(server, project: str) -> tuple[list[str], list[str]]:
    """(objects and unfinished uploads in the project's bucket, the catalogue's keys)."""
    bucket, pk = server.sql("SELECT bucket, id FROM projects_project WHERE public_id = ?",
                            project)[0]
    keys = sorted(k for (k,) in server.sql(
        "SELECT object_key FROM transfers_file WHERE project_id = ?", pk))
    return server.stored_objects().get(bucket, []), keys


def test_put_200_files_with_8_threads_on_sqlite_without_a_server_error(embedded, tmp_path):
    staff = _demo(embedded, tmp_path, "demo-unitadmin")
    from tests.e2e.journey import create_project

    project = create_project(staff, "--force")
    folder = tmp_path / "many"
    (folder / "sub").mkdir(parents=True)
    for i in range(196):
        (folder / ("sub" if i % 3 else ".") / f"f{i:03d}.txt").write_bytes(
            os.urandom(i * 37 % 5000))
    for i in range(4):  # a few multi-part files among them (complete, not batch)
        (folder / f"big{i}.bin").write_bytes(os.urandom(3 * MiB))
    start = len(embedded.log())

    r = staff("data", "put", "-p", project, "-s", str(folder), "--num-threads", "8",
              "--silent")
    assert r.code == 0 and "200 file(s) uploaded" in r.err, r.err
    assert embedded.server_errors(start) == []
    stored, catalogue = _project_objects(embedded, project)
    assert len(catalogue) == 200 and stored == catalogue


def test_first_delivery_journey_on_the_embedded_default(embedded, tmp_path):
    staff = _demo(embedded, tmp_path, "demo-unitadmin")
    researcher = _demo(embedded, tmp_path, "demo-researcher")
    source = journey_folder(tmp_path / "src")
    start = len(embedded.log())

    project = deliver_and_get_back(staff, researcher, source, tmp_path / "out", threads=4)

    assert embedded.server_errors(start) == []
    stored, catalogue = _project_objects(embedded, project)
    assert len(catalogue) == len(tree(source)) and stored == catalogue  # nothing left over
