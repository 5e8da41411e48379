"""Project key rotation: headers re-encrypted, copies replaced, resumable after a crash."""

import hashlib

import pytest

import c4gh
from accounts.models import Role
from keys.errors import RotationRefused
from keys.models import KeyRotation, KeyRotationStatus
from keys.services import project_access_grant, project_private_key
from keys.tests.helpers import keyed_user
from projects.services import project_create
from transfers.models import File
from transfers.services import rotation
from transfers.services.rotation import project_key_rotation_run, project_key_rotation_start
from transfers.tests.factories import FileFactory


@pytest.fixture
def rotating(unit_a):
    admin, _, admin_kek = keyed_user(Role.UNIT_ADMIN, unit_a)
    keyed_user(Role.UNIT_ADMIN, unit_a)
    researcher, _, researcher_kek = keyed_user()
    project = project_create(unit=unit_a, by=admin, title="rot", force=True)
    project_access_grant(project=project, grantee=researcher, granter=admin,
                         granter_kek=admin_kek)
    bodies = {}
    for i in range(7):
        plain = f"file {i} ".encode() * 100
        whole, result = c4gh.encrypt_bytes(plain, [bytes(project.public_key)], compress=False)
        hlen = c4gh.header_length(whole)
        f = FileFactory(project=project, header=whole[:hlen], path=f"d/f{i}",
                        checksum=hashlib.sha256(plain).hexdigest())
        bodies[f.pk] = (whole[hlen:], plain)
    old_sk = project_private_key(project=project, user=admin, kek=admin_kek)
    return {"admin": admin, "admin_kek": admin_kek, "researcher": researcher,
            "researcher_kek": researcher_kek, "project": project, "bodies": bodies,
            "old_sk": old_sk}


def _assert_all_rotated(world):
    project = world["project"]
    project.refresh_from_db()
    new_sk = project_private_key(project=project, user=world["researcher"],
                                 kek=world["researcher_kek"])
    assert new_sk != world["old_sk"]
    assert c4gh.derive_public_key(new_sk) == bytes(project.public_key)
    for f in File.objects.filter(project=project):
        body, plain = world["bodies"][f.pk]
        assert c4gh.decrypt_bytes(bytes(f.header) + body, new_sk) == plain
        with pytest.raises(c4gh.NoMatchingKeyError):
            c4gh.parse_header(bytes(f.header), world["old_sk"])
    assert not project.busy
    done = KeyRotation.objects.get(project=project)
    assert done.status == KeyRotationStatus.DONE
    assert done.old_private_key_sealed is None and done.new_private_key_sealed is None


@pytest.mark.django_db
def test_rotation_reencrypts_every_header_and_replaces_every_copy(rotating,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                   kek=rotating["admin_kek"])
    _assert_all_rotated(rotating)
    # The admin's own copy was replaced too.
    assert project_private_key(project=rotating["project"], user=rotating["admin"],
                               kek=rotating["admin_kek"]) != rotating["old_sk"]


@pytest.mark.django_db
def test_rotation_resumes_after_a_crash_midway(rotating, monkeypatch,
                                               django_capture_on_commit_callbacks):
    calls = {"n": 0}

    def crash_after_first_batch(rot, last_pk):
        calls["n"] += 1
        raise RuntimeError("worker killed")

    monkeypatch.setattr(rotation, "_after_batch", crash_after_first_batch)
    # Start without running the queued task; run it by hand with a tiny batch instead.
    with django_capture_on_commit_callbacks(execute=False):
        rot = project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                         kek=rotating["admin_kek"])
    with pytest.raises(RuntimeError):
        project_key_rotation_run(rotation_id=rot.pk, batch_size=3)
    rot.refresh_from_db()
    assert rot.status == KeyRotationStatus.RUNNING and rot.files_done == 3 and calls["n"] == 1
    # Starting again while it runs does not start a second rotation.
    again = project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                       kek=rotating["admin_kek"])
    assert again.pk == rot.pk
    # Mid-way: the project is busy, so nothing new can be encrypted to the old key.
    rotating["project"].refresh_from_db()
    assert rotating["project"].busy

    monkeypatch.undo()
    project_key_rotation_run(rotation_id=rot.pk, batch_size=3)
    _assert_all_rotated(rotating)
    # A second run of a finished rotation changes nothing.
    headers = list(File.objects.order_by("pk").values_list("header", flat=True))
    project_key_rotation_run(rotation_id=rot.pk)
    assert list(File.objects.order_by("pk").values_list("header", flat=True)) == headers


@pytest.mark.django_db
def test_rotation_needs_the_callers_key(rotating):
    stranger, _, stranger_kek = keyed_user()
    from keys.services import KeyAccessError

    with pytest.raises(KeyAccessError):
        project_key_rotation_start(project=rotating["project"], by=stranger, kek=stranger_kek)
    assert not KeyRotation.objects.exists()


@pytest.mark.django_db
def test_busy_project_refuses_a_rotation(rotating):
    type(rotating["project"]).objects.filter(pk=rotating["project"].pk).update(busy=True)
    with pytest.raises(RotationRefused, match="busy"):
        project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                   kek=rotating["admin_kek"])


@pytest.mark.django_db
def test_only_the_rotation_id_goes_to_the_broker(rotating, monkeypatch,
                                                 django_capture_on_commit_callbacks):
    from transfers import tasks

    sent = []
    monkeypatch.setattr(tasks.rotate_project_key, "delay", lambda *a, **k: sent.append((a, k)))
    with django_capture_on_commit_callbacks(execute=True):
        rot = project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                         kek=rotating["admin_kek"])
    assert sent == [((rot.pk,), {})]


@pytest.mark.django_db
def test_a_rotation_queued_under_the_old_task_name_still_runs(rotating):
    """A message queued by the release before the task moved (keys.tasks) finds a worker."""
    from celery import current_app

    current_app.loader.import_default_modules()
    rot = project_key_rotation_start(project=rotating["project"], by=rotating["admin"],
                                     kek=rotating["admin_kek"])  # on_commit: not queued
    current_app.tasks["keys.tasks.rotate_project_key"].apply(args=[rot.pk]).get()
    rot.refresh_from_db()
    assert rot.status == KeyRotationStatus.DONE
