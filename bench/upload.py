"""Benchmark: `dds data put` against a plain boto3 upload, same S3 endpoint, same run.

Run from the repository root (PostgreSQL on 127.0.0.1, as in CI)::

    .venv/bin/python bench/upload.py                       # 1 GiB + 10 000 x 4 KiB
    .venv/bin/python bench/upload.py --big-mib 256 --small 1000   # quick run
    .venv/bin/python bench/upload.py --mem-gib 10          # also: peak RSS of a 10 GiB put

It starts moto's S3 server (its own process, loopback) and the DDS server (gunicorn,
production settings, database ``--database-url``), creates a unit, staff and a project,
logs in with the real `dds auth login` (code read from the server's mail folder), then
times, one after the other on the same endpoint:

- boto3 ``upload_file`` of a 1 GiB random file (its default: 8 MiB parts, 10 threads),
  then ``dds data put`` of the same file (read, SHA-256, Crypt4GH, parts);
- 10 000 files of 4 KiB: boto3 ``upload_file`` on a pool of ``--threads`` threads, then
  ``dds data put --num-threads <threads>`` of the folder.

The peak RSS of each `dds` process is measured with ``wait4``. The last line is
``put_vs_boto3_1g=<x> put_vs_boto3_small=<y>`` (targets: <= 1.15 and <= 2).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from crypto import make_random  # noqa: E402 - the bench's one random-file maker

PY = sys.executable
BIN = Path(PY).parent
MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


SETUP = """
import json, secrets
from accounts.models import Role
from accounts.services import user_create
from accounts.tests.factories import UnitFactory
from projects.services import project_create
unit = UnitFactory(quota_bytes=10**14)
users = []
for i in range(3):  # projects need two Unit Admins, three are recommended
    name = f"bench{secrets.token_hex(3)}"
    pw = "Pw-" + secrets.token_urlsafe(16)
    users.append((user_create(username=name, email=f"{name}@example.org", name=name,
                              password=pw, role=Role.UNIT_ADMIN, unit=unit), pw))
project = project_create(unit=unit, by=users[0][0], title="Upload bench", force=True)
print("SETUP" + json.dumps({"project": project.public_id, "username": users[0][0].username,
                            "email": users[0][0].email, "password": users[0][1]}))
"""


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="dds-bench-", dir=args.dir))
        self.procs: list[subprocess.Popen] = []

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", str(self.tmp)], check=False)

    # ------------------------------------------------------------------ services

    def start(self) -> None:
        from api_scale import _ensure_database  # one way to make the bench database

        self.s3_url = f"http://127.0.0.1:{_free_port()}"
        port = self.s3_url.rsplit(":", 1)[1]
        self.procs.append(subprocess.Popen([BIN / "moto_server", "-H", "127.0.0.1", "-p", port],
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        _wait_http(self.s3_url)
        _ensure_database(self.args.database_url)
        self.env = {**os.environ, "DATABASE_URL": self.args.database_url, "DEBUG": "0",
                    "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "127.0.0.1",
                    "SECURE_SSL_REDIRECT": "0", "DDS_VAR_DIR": str(self.tmp / "var"),
                    "DDS_STORAGE_BACKEND": "s3", "AWS_S3_ENDPOINT_URL": self.s3_url,
                    "AWS_S3_REGION_NAME": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench-secret", "LOG_LEVEL": "WARNING",
                    "DDS_KDF_MEMORY_KIB": "65536", "DJANGO_SETTINGS_MODULE": "ddsite.settings"}
        (self.tmp / "var").mkdir()
        subprocess.run([PY, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO,
                       env=self.env, check=True)
        out = subprocess.run([PY, "manage.py", "shell", "-c", SETUP], cwd=REPO, env=self.env,
                             check=True, capture_output=True, text=True).stdout
        self.setup = json.loads(out.split("SETUP", 1)[1])
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.procs.append(subprocess.Popen(
            [BIN / "gunicorn", "ddsite.wsgi:application", "-b", self.url[7:], "-k", "gthread",
             "--workers", "2", "--threads", "8", "--log-level", "warning"],
            cwd=REPO, env=self.env))
        _wait_http(self.url + "/healthz")
        self.cli_env = {k: v for k, v in os.environ.items()
                        if not k.startswith(("DDS_", "DJANGO"))}
        self.cli_env.update(DDS_CONFIG_DIR=str(self.tmp / "cfg"), DDS_URL=self.url,
                            PYTHONPATH=str(REPO), DDS_PASSWORD=self.setup["password"])
        self._login()

    def _login(self) -> None:
        mail = self.tmp / "var" / "mail"
        seen = set(mail.glob("*")) if mail.exists() else set()
        proc = subprocess.Popen([PY, "-m", "cli", "auth", "login", "-u",
                                 self.setup["username"]], cwd=REPO, env=self.cli_env,
                                stdin=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        code = None
        while code is None and time.monotonic() < deadline:
            for f in set(mail.glob("*")) - seen if mail.exists() else ():
                found = re.search(r"\b(\d{8})\b", f.read_text(errors="replace"))
                if found and self.setup["email"] in f.read_text(errors="replace"):
                    code = found.group(1)
            time.sleep(0.1)
        if code is None:
            raise SystemExit("no login code arrived")
        proc.communicate(code + "\n", timeout=120)
        if proc.returncode:
            raise SystemExit("dds auth login failed")

    # ------------------------------------------------------------------ measurements

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench-secret")

    def boto3_file(self, path: Path) -> float:
        s3 = self.s3()
        s3.create_bucket(Bucket="plain")
        t = time.perf_counter()
        s3.upload_file(str(path), "plain", path.name)
        took = time.perf_counter() - t
        s3.delete_object(Bucket="plain", Key=path.name)
        return took

    def boto3_folder(self, folder: Path, threads: int) -> float:
        s3 = self.s3()
        s3.create_bucket(Bucket="plain-small")
        files = sorted(folder.iterdir())
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda p: s3.upload_file(str(p), "plain-small", p.name), files))
        return time.perf_counter() - t

    def dds_put(self, *args: str) -> tuple[float, int]:
        """(seconds, peak RSS in MB) of one `dds data put`."""
        t = time.perf_counter()
        proc = subprocess.Popen([PY, "-m", "cli", "data", "put", "-p", self.setup["project"],
                                 "--silent", "--overwrite", *args], cwd=REPO,
                                env=self.cli_env)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"dds data put failed ({proc.returncode})")
        return took, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/dds_bench_upload")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--small-bytes", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--mem-gib", type=int, default=0,
                        help="Also put a file of this many GiB and report peak RSS.")
    parser.add_argument("--dir", default=None, help="Where to make the test files.")
    args = parser.parse_args()

    bench = Bench(args)
    try:
        bench.start()
        big = bench.tmp / "big.bin"
        make_random(big, args.big_mib * MIB)
        plain_big = bench.boto3_file(big)
        dds_big, rss_big = bench.dds_put("-s", str(big))
        print(f"{args.big_mib} MiB: boto3 {plain_big:.2f} s ({args.big_mib / plain_big:.0f} "
              f"MiB/s), dds put {dds_big:.2f} s ({args.big_mib / dds_big:.0f} MiB/s), "
              f"peak RSS {rss_big} MB", flush=True)
        big.unlink()

        small = bench.tmp / "small"
        small.mkdir()
        for i in range(args.small):
            (small / f"f{i:05d}.bin").write_bytes(os.urandom(args.small_bytes))
        plain_small = bench.boto3_folder(small, args.threads)
        dds_small, rss_small = bench.dds_put("-s", str(small), "--num-threads",
                                             str(args.threads))
        print(f"{args.small} x {args.small_bytes} B, {args.threads} threads: boto3 "
              f"{plain_small:.2f} s ({args.small / plain_small:.0f} files/s), dds put "
              f"{dds_small:.2f} s ({args.small / dds_small:.0f} files/s), peak RSS "
              f"{rss_small} MB", flush=True)

        if args.mem_gib:
            huge = bench.tmp / "huge.bin"
            make_random(huge, args.mem_gib * 1024 * MIB)
            took, rss = bench.dds_put("-s", str(huge))
            print(f"{args.mem_gib} GiB: dds put {took:.1f} s, peak RSS {rss} MB", flush=True)
            huge.unlink()
        print(f"put_vs_boto3_1g={dds_big / plain_big:.2f} "
              f"put_vs_boto3_small={dds_small / plain_small:.2f}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
