"""A real Celery worker (started by the image's entrypoint) on a real Redis broker runs a
key rotation; only the rotation's id crosses the broker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

import c4gh
from accounts.models import Role
from accounts.tests.factories import UnitFactory
from ddsite.celery import app
from keys.models import KeyRotation, KeyRotationStatus
from keys.services import project_private_key
from keys.tests.helpers import keyed_user
from projects.services import project_create
from transfers.models import File
from transfers.services.rotation import project_key_rotation_start
from transfers.tasks import rotate_project_key
from transfers.tests.factories import FileFactory

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def worker(tmp_path):
    redis.Redis.from_url(BROKER).flushdb()
    db = connection.settings_dict
    env = {**os.environ, "PYTHON": sys.executable, "DJANGO_SETTINGS_MODULE": "ddsite.settings",
           "DEBUG": "1", "CELERY_BROKER_URL": BROKER, "CELERY_CONCURRENCY": "1",
           "DDS_VAR_DIR": str(tmp_path),
           "DDS_WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                           f"{db['PORT'] or 5432}/{db['NAME']}"}
    proc = subprocess.Popen([str(ROOT / "docker/entrypoint.sh"), "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.env = env
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.django_db(transaction=True)
def test_worker_rotates_a_project_key_over_redis(worker, django_capture_on_commit_callbacks):
    assert connection.vendor == "postgresql"
    unit_admin, _, kek = keyed_user(Role.UNIT_ADMIN, UnitFactory(internal_ref="wrk"))
    keyed_user(Role.UNIT_ADMIN, unit_admin.unit)
    project = project_create(unit=unit_admin.unit, by=unit_admin, title="worker", force=True)
    whole, _ = c4gh.encrypt_bytes(b"x" * 1000, [bytes(project.public_key)], compress=False)
    hlen = c4gh.header_length(whole)
    FileFactory(project=project, header=whole[:hlen])
    old_sk = project_private_key(project=project, user=unit_admin, kek=kek)

    # Start without the eager task; enqueue it on the real broker instead.
    with django_capture_on_commit_callbacks(execute=False):
        rotation = project_key_rotation_start(project=project, by=unit_admin, kek=kek)
    with app.connection_for_write(BROKER) as conn:
        rotate_project_key.apply_async((rotation.pk,), connection=conn)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rotation.refresh_from_db()
        if rotation.status == KeyRotationStatus.DONE:
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.5)
    assert rotation.status == KeyRotationStatus.DONE, "worker did not finish the rotation"
    new_sk = project_private_key(project=project, user=unit_admin, kek=kek)
    assert new_sk != old_sk
    header = bytes(File.objects.get(project=project).header)
    assert c4gh.decrypt_bytes(header + whole[hlen:], new_sk) == b"x" * 1000
    assert KeyRotation.objects.get(pk=rotation.pk).old_private_key_sealed is None
    # The liveness probe of the worker Deployment sees the heartbeat (once it has booted).
    deadline = time.monotonic() + 60
    while True:
        probe = subprocess.run([str(ROOT / "docker/entrypoint.sh"), "probe-worker"],
                               cwd=ROOT, env=worker.env, timeout=30)
        if probe.returncode == 0 or time.monotonic() > deadline:
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.5)
    assert probe.returncode == 0
    Path(worker.env["DDS_WORKER_HEARTBEAT_FILE"]).unlink()
    stale = subprocess.run([str(ROOT / "docker/entrypoint.sh"), "probe-worker"], cwd=ROOT,
                           env=worker.env, timeout=30)
    assert stale.returncode != 0
