"""Catalogue reads with constant query counts, removal, purge and usage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from projects.tests.factories import ProjectFactory
from transfers.errors import BadInput, NotFound, StorageUnavailable
from transfers.models import File, FileVersion, Folder, Upload, UploadStatus, Usage
from transfers.selectors import files_match, folder_list, folder_tree
from transfers.services import folders_rebuild, project_storage_purge, usage_record
from transfers.storage import storage_for_project
from transfers.tests.factories import FileFactory
from transfers.tests.helpers import api_url, upload


def _fill(project, n_folders, per_folder):
    files = [FileFactory.build(project=project, path=f"d{d:03d}/sub/f{i:04d}.txt")
             for d in range(n_folders) for i in range(per_folder)]
    File.objects.bulk_create(files)
    FileVersion.objects.bulk_create([FileVersion(project=project, file=f,
                                                 object_key=f.object_key,
                                                 size_stored=f.size_stored) for f in files])
    folders_rebuild(project=project)


@pytest.mark.django_db
@pytest.mark.parametrize("size", [(2, 5), (20, 50)])
def test_folder_listing_runs_constant_queries(django_assert_num_queries,
                                              django_assert_max_num_queries, size):
    project = ProjectFactory()
    _fill(project, *size)
    with django_assert_num_queries(5):
        page = folder_list(project=project, folder="d001/sub", limit=3)
    assert [f.name for f in page.files] == ["f0000.txt", "f0001.txt", "f0002.txt"]
    assert page.total_files == size[1]
    # A page filled by folders skips the file query.
    with django_assert_max_num_queries(5):
        root = folder_list(project=project, folder="", limit=10)
    assert root.folder.file_count == size[0] * size[1]
    assert root.folders[0].file_count == size[1]
    assert root.total_folders == size[0]


@pytest.mark.django_db
def test_folders_come_first_then_files_across_pages():
    project = ProjectFactory()
    for p in ["b/1", "a/1", "z.txt", "y.txt"]:
        FileFactory(project=project, path=p)
    folders_rebuild(project=project)
    first = folder_list(project=project, limit=3)
    assert [f.name for f in first.folders] == ["a", "b"]
    assert [f.name for f in first.files] == ["y.txt"]
    second = folder_list(project=project, offset=first.next_offset, limit=3)
    assert [f.name for f in second.files] == ["z.txt"] and second.next_offset is None
    with pytest.raises(NotFound):
        folder_list(project=project, folder="nope")


@pytest.mark.django_db
@pytest.mark.parametrize("n", [10, 1000])
def test_match_runs_one_query(django_assert_num_queries, n):
    project = ProjectFactory()
    _fill(project, 10, 100)
    asked = [f"d{d:03d}/sub/f{i:04d}.txt" for d in range(0, 20, 2) for i in range(n // 10)]
    with django_assert_num_queries(1):
        found = files_match(project=project, paths=asked)
    assert len(found) == len([p for p in asked if int(p[1:4]) < 10 and int(p[10:14]) < 100])
    with pytest.raises(BadInput):
        files_match(project=project, paths=["../x"])


@pytest.mark.django_db
def test_tree_is_keyset_paginated():
    project = ProjectFactory()
    _fill(project, 3, 4)
    files, nxt = folder_tree(project=project, folder="d001", limit=3)
    assert [f.path for f in files] == [f"d001/sub/f{i:04d}.txt" for i in range(3)]
    files, nxt2 = folder_tree(project=project, folder="d001", after=nxt, limit=3)
    assert [f.path for f in files] == ["d001/sub/f0003.txt"] and nxt2 is None


@pytest.mark.django_db
def test_api_listing_query_count_does_not_grow(world, django_assert_max_num_queries):
    _fill(world.project, 5, 40)
    client = world.client()
    with django_assert_max_num_queries(12):
        r = client.get(api_url(world.project, "files"), {"folder": "d002/sub", "limit": 25})
    assert r.status_code == 200 and len(r.json()["files"]) == 25
    assert r.json()["next_offset"] == 25
    with django_assert_max_num_queries(8):
        r = client.post(api_url(world.project, "files/match"),
                        {"paths": ["d000/sub/f0000.txt", "zz"]}, format="json")
    assert r.json()["found"] == ["d000/sub/f0000.txt"]
    r = client.get(api_url(world.project, "files/info"), {"path": "d000/sub/f0001.txt"})
    assert r.status_code == 200 and r.json()["size_stored"] == 128
    r = client.get(api_url(world.project, "files/tree"), {"folder": "d004", "limit": 50})
    assert len(r.json()["files"]) == 40
    r = client.get(api_url(world.project, "storage"))
    assert r.json()["files"] == 200 and r.json()["stored_bytes"] == 200 * 128


@pytest.mark.django_db(transaction=True)
def test_remove_files_and_folders(world, storage, settings):
    client = world.client()
    for p in ["a/1.txt", "a/2.txt", "a/b/3.txt", "c/4.txt"]:
        upload(client, world.project, p, p.encode())
    keys = dict(File.objects.values_list("path", "object_key"))
    r = client.post(api_url(world.project, "files/remove"), {"paths": ["a/1.txt", "nope"]},
                    format="json")
    assert r.json() == {"removed": ["a/1.txt"], "not_found": ["nope"]}
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, keys["a/1.txt"]) is None
    assert Folder.objects.get(project=world.project, path="a").file_count == 2
    r = client.post(api_url(world.project, "files/remove-folder"), {"folder": "a"},
                    format="json")
    assert r.status_code == 200 and r.json()["files"] == 2
    assert list(File.objects.values_list("path", flat=True)) == ["c/4.txt"]
    assert not Folder.objects.filter(path__startswith="a").exists()
    assert FileVersion.objects.filter(deleted_at__isnull=True).count() == 1
    # A folder above the synchronous limit goes to the (here eager) Celery task.
    settings.DDS_FOLDER_REMOVE_SYNC_LIMIT = 0
    r = client.post(api_url(world.project, "files/remove-folder"), {"folder": "c"},
                    format="json")
    assert r.status_code == 202 and r.json()["queued"]
    assert not File.objects.exists()
    assert backend.head_size(world.project.bucket, keys["c/4.txt"]) is None
    root = Folder.objects.get(project=world.project, path="")
    assert (root.file_count, root.size_stored) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_folder_removal_messages_queued_by_an_older_release_still_run(world, s3_storage):
    from transfers.tasks import folder_remove_task

    client = world.client()
    for p in ["old/1", "old/2", "kept"]:
        upload(client, world.project, p, p.encode())
    assert folder_remove_task.name == "transfers.tasks.folder_remove_task"
    # Older messages carried the user's id as a third argument.
    folder_remove_task.apply(args=(world.project.pk, "old", world.staff.pk)).get()
    assert list(File.objects.values_list("path", flat=True)) == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_project_storage_purge(world, storage):
    client = world.client()
    for p in ["x/1", "x/2", "3"]:
        upload(client, world.project, p, b"data" + p.encode())
    r = client.post(api_url(world.project, "uploads"), {"path": "open", "size_original": 9},
                    format="json")
    assert r.status_code == 201
    backend = storage_for_project(world.project)
    assert len(backend.list_objects(world.project.bucket, 100)) == 3
    assert len(backend.list_multipart(world.project.bucket, 100)) == 1
    assert project_storage_purge(project=world.project, batch_size=2) == 3
    assert backend.list_objects(world.project.bucket, 100) == []
    assert backend.list_multipart(world.project.bucket, 100) == []
    assert not File.objects.exists() and not Folder.objects.exists()
    assert not FileVersion.objects.filter(deleted_at__isnull=True).exists()
    assert Upload.objects.get(path="open").status == UploadStatus.ABORTED
    # Idempotent: a second run finds nothing and succeeds.
    assert project_storage_purge(project=world.project) == 0


@pytest.mark.django_db(transaction=True)
def test_project_storage_purge_when_storage_is_down(world, s3_storage, settings,
                                                    moto_endpoint):
    upload(world.client(), world.project, "f", b"data")
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    with pytest.raises(StorageUnavailable):
        project_storage_purge(project=world.project)
    assert File.objects.count() == 1  # nothing marked gone while the object remains
    settings.AWS_S3_ENDPOINT_URL = moto_endpoint
    assert project_storage_purge(project=world.project) == 1


@pytest.mark.django_db
def test_usage_is_byte_hours_per_version():
    project = ProjectFactory()
    start = dt.datetime(2025, 3, 1, tzinfo=timezone.get_current_timezone())
    end = dt.datetime(2025, 4, 1, tzinfo=timezone.get_current_timezone())
    # March 2025 has a clock change in Europe: 743 real hours, counted in UTC.
    hours = Decimal((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 3600)
    assert hours == 743
    FileVersion.objects.create(project=project, object_key="a", size_stored=1000,
                               uploaded_at=start - dt.timedelta(days=3))
    FileVersion.objects.create(project=project, object_key="b", size_stored=10,
                               uploaded_at=start + dt.timedelta(hours=1),
                               deleted_at=start + dt.timedelta(hours=3))
    FileVersion.objects.create(project=project, object_key="c", size_stored=99,
                               uploaded_at=end + dt.timedelta(hours=1))
    assert usage_record(period_start=start, period_end=end) == 1
    assert Usage.objects.get().byte_hours == 1000 * hours + 20
    assert usage_record(period_start=start, period_end=end) == 1  # idempotent
    assert Usage.objects.count() == 1
    with pytest.raises(BadInput):
        usage_record(period_start=end, period_end=start)

