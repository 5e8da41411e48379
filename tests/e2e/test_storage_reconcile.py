"""A file whose object storage lost: after `manage.py storage_reconcile` the real `dds`
shows it lost and refuses to download it with a clear message; the other files still
come back byte for byte."""

from __future__ import annotations

import json
import os
from io import StringIO

import pytest
from django.core.management import call_command

from transfers.models import File, FileVersion
from transfers.storage import storage_for_project

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lost_file_is_shown_lost_and_refused_by_dds(e2e, tmp_path):
    staff = e2e.staff
    staff.login()
    r = staff("project", "create", "-t", "Lost file", "-pi", "Prof. P", "--force", "--json")
    assert r.code == 0, r.err
    project = json.loads(r.out)["id"]
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.bin").write_bytes(os.urandom(50_000))
    (src / "lost.bin").write_bytes(os.urandom(50_000))
    r = staff("data", "put", "-p", project, "-s", str(src / "ok.bin"), "-s",
              str(src / "lost.bin"), "--silent")
    assert r.code == 0, r.err

    lost = File.objects.select_related("project").get(project__public_id=project,
                                                      path="lost.bin")
    storage_for_project(lost.project).delete_objects(lost.project.bucket, [lost.object_key])
    out = StringIO()
    call_command("storage_reconcile", "--no-email", stdout=out)
    assert "lost.bin" in out.getvalue()
    assert FileVersion.objects.get(file=lost).lost_at is not None

    r = staff("data", "ls", "-p", project, "--json")
    assert r.code == 0, r.err
    listed = {f["name"]: f for f in json.loads(r.out)["files"]}
    assert listed["lost.bin"]["lost"] is True and listed["ok.bin"]["lost"] is False
    r = staff("data", "ls", "-p", project)
    assert "lost.bin (lost)" in r.out and "ok.bin (lost)" not in r.out

    back = tmp_path / "back"
    r = staff("data", "get", "-p", project, "-s", "lost.bin", "-d", str(back), "--silent")
    assert r.code != 0
    assert "lost in storage" in r.err and "lost.bin" in r.err
    assert "Traceback" not in r.err
    r = staff("data", "get", "-p", project, "-s", "ok.bin", "-d", str(back), "--silent")
    assert r.code == 0, r.err
    assert (back / "ok.bin").read_bytes() == (src / "ok.bin").read_bytes()
