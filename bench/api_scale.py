"""Benchmark: the file catalogue API at scale (100 000 files in 1 000 folders).

Run from the repository root (PostgreSQL on 127.0.0.1, as in CI)::

    .venv/bin/python bench/api_scale.py                       # 100 000 files
    .venv/bin/python bench/api_scale.py --files 10000 --folders 100   # quick run

It creates (or reuses) the database named by ``--database-url`` (default
``postgres://postgres@127.0.0.1:5432/dds_bench``), migrates it, fills one project through
bulk inserts and ``folders_rebuild``, then times the real API views in-process (URL
routing, authentication, permission and status checks, serializers, JSON rendering):

- listing one page (100 entries) of a random folder, and
- ``match`` for 1 000 paths (half of them existing).

Each operation's query count is asserted constant. The last line is machine-readable:
``list_p95_ms=<x> match1000_p95_ms=<y>`` (target: both < 100 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ddsite.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _fill(n_files: int, n_folders: int):
    from accounts.models import Role, Unit, User
    from projects.models import Project
    from transfers.models import File, FileVersion
    from transfers.services import folders_rebuild

    unit, _ = Unit.objects.get_or_create(
        internal_ref="bench", defaults={"name": "Bench", "display_name": "Bench",
                                        "contact_email": "bench@example.org"})
    user = User.objects.filter(username="bench-staff").first() or User.objects.create_user(
        "bench-staff", "bench@example.org", None, name="Bench", role=Role.UNIT_ADMIN,
        unit=unit)
    project = Project.objects.filter(public_id="bench-00001").first()
    if project is not None and File.objects.filter(project=project).count() == n_files:
        return project, user, False
    if project is not None:
        FileVersion.objects.filter(project=project).delete()
        File.objects.filter(project=project).delete()
    else:
        project = Project.objects.create(unit=unit, public_id="bench-00001", title="Bench",
                                         bucket="dds-bench-00001", created_by=user)
    per = n_files // n_folders
    batch = []
    t0 = time.perf_counter()
    for d in range(n_folders):
        top = f"run{d // 100:02d}"
        for i in range(per):
            path = f"{top}/sample{d:04d}/reads_{i:04d}.fastq.gz"
            batch.append(File(project=project, path=path, name=path.rsplit("/", 1)[1],
                              folder=path.rsplit("/", 1)[0], object_key=f"bench-{d}-{i}",
                              size_original=1000 + i, size_stored=1028 + i,
                              header=b"\0" * 124, checksum="0" * 64))
        if len(batch) >= 20_000:
            _flush(batch, project)
            batch = []
    _flush(batch, project)
    folders_rebuild(project=project)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE transfers_file; ANALYZE transfers_folder; "
                    "ANALYZE transfers_fileversion")
    print(f"filled {n_files} files in {n_folders} folders in "
          f"{time.perf_counter() - t0:.1f} s")
    return project, user, True


def _flush(batch, project) -> None:
    from transfers.models import File, FileVersion

    created = File.objects.bulk_create(batch, batch_size=5000)
    FileVersion.objects.bulk_create(
        [FileVersion(project=project, file=f, object_key=f.object_key,
                     size_stored=f.size_stored) for f in created], batch_size=5000)


def _timed(fn, runs: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, counts = [], set()
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        counts.add(len(ctx))
    assert len(counts) == 1, f"query count varies between runs: {sorted(counts)}"
    return times, counts.pop()


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url",
                        default=os.environ.get("BENCH_DATABASE_URL",
                                               "postgres://postgres@127.0.0.1:5432/dds_bench"))
    args = parser.parse_args()
    _ensure_database(args.database_url)
    _setup(args.database_url)

    from rest_framework.test import APIClient

    project, user, _ = _fill(args.files, args.folders)
    client = APIClient()
    client.force_authenticate(user)
    base = f"/api/v1/projects/{project.public_id}/files"
    rnd = random.Random(7)
    per = args.files // args.folders

    def list_page():
        d = rnd.randrange(args.folders)
        r = client.get(base, {"folder": f"run{d // 100:02d}/sample{d:04d}", "limit": 100,
                              "offset": 0})
        assert r.status_code == 200 and len(r.json()["files"]) == min(100, per), r.content

    def match_1000():
        paths = []
        for _ in range(500):
            d, i = rnd.randrange(args.folders), rnd.randrange(per)
            paths.append(f"run{d // 100:02d}/sample{d:04d}/reads_{i:04d}.fastq.gz")
            paths.append(f"run{d // 100:02d}/sample{d:04d}/missing_{i:04d}.fastq.gz")
        r = client.post(f"{base}/match", {"paths": paths}, format="json")
        assert r.status_code == 200, r.content

    for fn in (list_page, match_1000):  # warm caches and connections
        fn()
    list_ms, list_q = _timed(list_page, args.runs)
    match_ms, match_q = _timed(match_1000, max(args.runs // 4, 20))
    print(f"files={args.files} folders={args.folders} runs={args.runs}")
    print(f"list one page (100 entries): {list_q} queries, median "
          f"{statistics.median(list_ms):.1f} ms, p95 {_p95(list_ms):.1f} ms")
    print(f"match 1000 paths:            {match_q} queries, median "
          f"{statistics.median(match_ms):.1f} ms, p95 {_p95(match_ms):.1f} ms")
    print(f"list_p95_ms={_p95(list_ms):.1f} match1000_p95_ms={_p95(match_ms):.1f}")


if __name__ == "__main__":
    main()
