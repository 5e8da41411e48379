"""N concurrent logins against gunicorn with the production KDF; peak RSS of the server.

    .venv/bin/python bench/login_load.py                  # 50 logins, 3 workers × 4 threads
    .venv/bin/python bench/login_load.py --logins 100 --workers 2 --threads 8

Starts the image's entrypoint (``docker/entrypoint.sh web``, DEBUG off, the production
settings module) on loopback against PostgreSQL (``--database-url``, a database of its
own that it migrates), creates the accounts through the services with the production
Argon2id costs, fires the logins at once (step 1: password check and KEK derivation, the
memory-hard part), samples the RSS of the whole gunicorn process tree from /proc, and
prints one line:

    login_p95_s=<x> login_peak_rss_mb=<y> login_5xx=<z>

plus details (p50, max, statuses, the budget) on the lines before it. A benchmark, not a
test: docs/operations-load.md records its figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Bench-pw-" + "x7" * 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss_kib(root_pid: int) -> int:
    """RSS of ``root_pid`` and all its descendants (VmRSS from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stop = pid, every, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _tree_rss_kib(self.pid))
            time.sleep(self.every)


def _environment(args, tmp: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "PYTHON": sys.executable, "DJANGO_SETTINGS_MODULE": "ddsite.settings",
           "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64),
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
           "DDS_TRUSTED_PROXIES": "127.0.0.1", "DDS_MIGRATE": "0", "DDS_ALLOW_EMBEDDED": "1",
           "DATABASE_URL": args.database_url, "DDS_VAR_DIR": str(tmp),
           "STATIC_ROOT": str(tmp / "static"), "DDS_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": str(args.workers), "GUNICORN_THREADS": str(args.threads),
           # One client address sends every login: lift the per-address rate for the bench.
           "DDS_THROTTLE_RATES": "login=100000/min", "DDS_LOCKOUT_IP_FAILURES": "100000",
           # Login does no RSA; smaller user keys only make the set-up faster.
           "DDS_USER_RSA_BITS": "2048", "LOG_LEVEL": "WARNING"}
    for name in ("DDS_KDF_MEMORY_BUDGET_MIB", "DDS_KDF_QUEUE", "DDS_KDF_WAIT_SECONDS",
                 "DDS_KDF_MEMORY_KIB", "DDS_KDF_TIME_COST", "DDS_KDF_PARALLELISM"):
        if getattr(args, name.lower(), None) is not None:
            env[name] = str(getattr(args, name.lower()))
    return env


def _setup_accounts(env: dict[str, str], count: int) -> list[str]:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import Role, User
    from accounts.services import user_create

    call_command("migrate", verbosity=0, interactive=False)
    names = []
    for i in range(count):
        name = f"bench{i:03d}"
        if not User.objects.filter(username=name).exists():
            user_create(username=name, email=f"{name}@example.org", name=name,
                        password=PASSWORD, role=Role.RESEARCHER)
        names.append(name)
    print(f"kdf: time_cost={settings.DDS_KDF_TIME_COST} "
          f"memory={settings.DDS_KDF_MEMORY_KIB // 1024}MiB "
          f"parallelism={settings.DDS_KDF_PARALLELISM}; "
          f"budget={getattr(settings, 'DDS_KDF_MEMORY_BUDGET_MIB', 512)}MiB/process",
          flush=True)
    return names


def _serve(env: dict[str, str], tmp: Path, port: int) -> subprocess.Popen:
    import httpx

    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([str(ROOT / "docker/entrypoint.sh"), "web"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit("gunicorn did not start:\n" + (tmp / "server.log").read_text()[-3000:])
            time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=10,
                        help="distinct accounts the logins are spread over")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", 3)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", 4)))
    parser.add_argument("--memory-limit-mb", type=int, default=2048,
                        help="the web pod's memory limit (k8s/base/web.yaml), to compare")
    parser.add_argument("--database-url",
                        default=os.environ.get("BENCH_DATABASE_URL",
                                               "postgres://postgres@127.0.0.1:5432/dds_bench"))
    parser.add_argument("--dds-kdf-memory-budget-mib", type=int)
    parser.add_argument("--dds-kdf-queue", type=int)
    parser.add_argument("--dds-kdf-wait-seconds", type=float)
    parser.add_argument("--dds-kdf-memory-kib", type=int)
    parser.add_argument("--dds-kdf-time-cost", type=int)
    parser.add_argument("--dds-kdf-parallelism", type=int)
    args = parser.parse_args()

    _ensure_database(args.database_url)
    import httpx

    with tempfile.TemporaryDirectory(prefix="dds-login-bench-") as tmpdir:
        tmp, port = Path(tmpdir), _free_port()
        env = _environment(args, tmp, port)
        names = _setup_accounts(env, args.accounts)
        proc = _serve(env, tmp, port)
        try:
            idle = _tree_rss_kib(proc.pid)
            sampler = RssSampler(proc.pid)
            sampler.start()
            barrier = threading.Barrier(args.logins)
            latencies: list[float] = []
            statuses: Counter = Counter()
            lock = threading.Lock()

            def login(i: int):
                body = {"username": names[i % len(names)], "password": PASSWORD}
                barrier.wait()
                started = time.monotonic()
                try:
                    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login", json=body,
                                   timeout=300)
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    latencies.append(time.monotonic() - started)
                    statuses[status] += 1

            started = time.monotonic()
            threads = [threading.Thread(target=login, args=(i,)) for i in range(args.logins)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(30)
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    errors = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
    peak_mb = sampler.peak / 1024
    print(f"workers={args.workers} threads={args.threads} logins={args.logins} "
          f"wall_s={wall:.1f} rate_per_s={args.logins / wall:.2f}")
    print(f"statuses={dict(statuses)} p50_s={statistics.median(latencies):.2f} "
          f"max_s={latencies[-1]:.2f} idle_rss_mb={idle / 1024:.0f} "
          f"limit_mb={args.memory_limit_mb} within_limit={peak_mb <= args.memory_limit_mb}")
    print(f"login_p95_s={p95:.2f} login_peak_rss_mb={peak_mb:.0f} login_5xx={errors}")
    return 0


def _ensure_database(url: str) -> None:
    """Create the bench's database if missing (it is migrated by the set-up)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.exit(main())
