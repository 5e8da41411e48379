"""Benchmark: `dds data put/get` against boto3 doing the same, same S3 endpoint, same run.

Run from the repository root (PostgreSQL on 127.0.0.1, as in CI)::

    .venv/bin/python bench/upload.py                          # everything, 3 repetitions
    .venv/bin/python bench/upload.py --big-mib 256 --small 1000 --huge-gib 0 --reps 1  # quick

The S3 endpoint is ``bench/s3sink.py`` (its own process, loopback): it discards bodies
(or keeps them in memory for the download case) at ~0.25 CPU-s per GiB, so the ratios
measure the clients, not the storage (moto, the correctness tests' S3, burns 7-13 CPU-s
per GiB on the same cores and loads a whole object per ranged GET). The DDS server runs
under gunicorn (production settings, database ``--database-url``) in front of it; a unit,
staff and a project are created and `dds auth login` runs for real (code from the server's
mail folder). Then, interleaved (boto3, dds, boto3, dds, ...), ``--reps`` times:

- put 1 GiB: boto3 ``upload_file`` of a random file (its default: 8 MiB parts, 10 threads)
  vs ``dds data put`` of the same file (read, SHA-256, Crypt4GH, parts, complete);
- get 1 GiB: boto3 ``download_file`` of the stored object vs ``dds data get`` of the file
  (re-encrypted header, GET, decrypt, SHA-256 verified, rename);
- put ``--small`` files of 4 KiB: boto3 ``upload_file`` on ``--threads`` threads vs
  ``dds data put --num-threads <threads>`` of the folder (into a new folder each time);
- put ``--huge-gib`` (10) GiB: both, for the peak RSS of `dds` (and the time).

Every tool runs in its own process; reported per run: wall seconds, CPU-seconds of that
process (user+system, from ``wait4``), its peak RSS, and the CPU-seconds the sink and the
DDS server (gunicorn master + workers) used meanwhile, plus the load average. The last
line is ``put_vs_boto3_1g=<x> put_vs_boto3_small=<y> get_vs_boto3_1g=<z>
put_peak_rss_mb=<m>`` (medians of the per-repetition ratios; peak RSS: the largest `dds`
put seen, 10 GiB included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

PY = sys.executable
BIN = Path(PY).parent
MIB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")


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


def _proc_cpu(pid: int) -> float:
    """CPU-seconds (user+system) of a process and its live children, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _proc_cpu(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def make_random_file(path: Path, size: int, block_mib: int = 64) -> None:
    """Random bytes (a 64 MiB random block repeated: incompressible to zstd's trial and
    window, fast to write)."""
    block = os.urandom(min(size, block_mib * MIB))
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


# --------------------------------------------------------------------------- boto3 workers
# Run as ``upload.py --boto3 OP ARGS`` in a process of their own (CPU and RSS per process).


def _s3(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench-secret")


def boto3_worker(op: str, endpoint: str, args: list[str]) -> None:
    s3 = _s3(endpoint)
    if op == "put-file":
        s3.create_bucket(Bucket="plain")
        s3.upload_file(args[0], "plain", Path(args[0]).name)
    elif op == "put-folder":
        s3.create_bucket(Bucket="plain-small")
        files = sorted(Path(args[0]).iterdir())
        with ThreadPoolExecutor(int(args[1])) as pool:
            list(pool.map(lambda p: s3.upload_file(str(p), "plain-small", p.name), files))
    elif op == "get-file":
        s3.download_file(args[0], args[1], args[2])
    else:
        raise SystemExit(f"unknown op {op}")


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

        # boto3 runs from site-packages, byte-compiled when pip installed it; so does an
        # installed `dds`. This checkout's sources may have no bytecode (with
        # PYTHONDONTWRITEBYTECODE set, as on the CI machines, none is ever written), and
        # compiling them cost every `dds` run 69 ms (cProfile of a one-file put).
        subprocess.run([PY, "-m", "compileall", "-q", "cli", "c4gh"], cwd=REPO, check=True)
        self.s3_url = f"http://127.0.0.1:{_free_port()}"
        port = self.s3_url.rsplit(":", 1)[1]
        self.sink = subprocess.Popen([PY, str(REPO / "bench" / "s3sink.py"), "--port", port],
                                     stdout=subprocess.DEVNULL)
        self.procs.append(self.sink)
        _wait_http(self.s3_url)
        _ensure_database(self.args.database_url)
        self.env = {**os.environ, "DATABASE_URL": self.args.database_url, "DEBUG": "0",
                    "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "127.0.0.1",
                    "SECURE_SSL_REDIRECT": "0", "DDS_VAR_DIR": str(self.tmp / "var"),
                    "DDS_STORAGE_BACKEND": "s3", "AWS_S3_ENDPOINT_URL": self.s3_url,
                    "AWS_S3_REGION_NAME": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench-secret", "LOG_LEVEL": "WARNING",
                    "DDS_KDF_MEMORY_KIB": "65536", "DJANGO_SETTINGS_MODULE": "ddsite.settings",
                    # a benchmark host: mail files and eager tasks, no ingress in front
                    "DDS_ALLOW_EMBEDDED": "1", "DDS_BEHIND_PROXY": "0"}
        (self.tmp / "var").mkdir()
        subprocess.run([PY, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO,
                       env=self.env, check=True)
        out = subprocess.run([PY, "manage.py", "shell", "-c", SETUP], cwd=REPO, env=self.env,
                             check=True, capture_output=True, text=True).stdout
        self.setup = json.loads(out.split("SETUP", 1)[1])
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.server = subprocess.Popen(
            [BIN / "gunicorn", "ddsite.wsgi:application", "-b", self.url[7:], "-k", "gthread",
             "--workers", "2", "--threads", "8", "--timeout", "600", "--log-level",
             # the image's hooks too (docker/entrypoint.sh): metrics, the S3 client made
             # as each worker starts
             "warning", "--config", "python:ddsite.gunicorn_conf"], cwd=REPO, env=self.env,
            stderr=open(self.tmp / "server.log", "wb"))
        self.procs.append(self.server)
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

    def sink_store(self, on: bool) -> None:
        import httpx

        httpx.put(f"{self.s3_url}/_sink/store/{'on' if on else 'off'}", content=b"")

    # ------------------------------------------------------------------ measurements

    def run(self, argv: list, env: dict) -> dict:
        """One tool in its own process: wall, its CPU-s and peak RSS, sink/server CPU-s."""
        sink0, server0 = _proc_cpu(self.sink.pid), _proc_cpu(self.server.pid)
        load = os.getloadavg()[0]
        # Linux carries the parent's peak RSS over fork+exec into the child's ru_maxrss:
        # GNU time (a tiny process) reports the tool's own peak. CPU-s: from wait4 (GNU
        # time's own share is a millisecond).
        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        t = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file,
                                 *[str(a) for a in argv]], cwd=REPO, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        rss = int(Path(rss_file).read_text().split()[-1]) // 1024
        os.unlink(rss_file)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{argv[:6]} failed ({os.waitstatus_to_exitcode(status)})")
        return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": rss,
                "sink": _proc_cpu(self.sink.pid) - sink0,
                "server": _proc_cpu(self.server.pid) - server0, "load": load}

    def boto3(self, op: str, *args) -> dict:
        return self.run([PY, __file__, "--boto3", op, self.s3_url, *args], os.environ.copy())

    def dds(self, *args: str) -> dict:
        return self.run([PY, "-m", "cli", "data", *args, "-p", self.setup["project"],
                         "--silent"], self.cli_env)

    def stored_object(self) -> tuple[str, str]:
        """(bucket, key) of the largest object the sink holds (the 1 GiB file's)."""
        s3 = _s3(self.s3_url)
        best = (0, "", "")
        for b in s3.list_buckets()["Buckets"]:
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", []):
                best = max(best, (o["Size"], b["Name"], o["Key"]))
        return best[1], best[2]


def _line(rep: int, case: str, tool: str, r: dict, extra: str = "") -> str:
    return (f"rep {rep} {case:10s} {tool:5s} wall {r['wall']:7.2f} s  cpu {r['cpu']:6.2f} s  "
            f"rss {r['rss']:5d} MB  sink cpu {r['sink']:5.2f} s  server cpu {r['server']:5.2f} s"
            f"  load {r['load']:.1f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/dds_bench_upload")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--small-bytes", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--huge-gib", type=int, default=10,
                        help="Also put a file of this many GiB (peak RSS); 0 = skip.")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", default="put,get,small,huge")
    parser.add_argument("--dir", default=None, help="Where to make the test files.")
    parser.add_argument("--boto3", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.boto3:
        boto3_worker(args.boto3[0], args.boto3[1], args.boto3[2:])
        return

    cases = set(args.cases.split(","))
    bench = Bench(args)
    ratios: dict[str, list[float]] = {"put": [], "get": [], "small": []}
    peak = 0
    try:
        bench.start()
        print(f"# cpus={os.cpu_count()} load average at start "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; sink {bench.s3_url}",
              flush=True)
        big = bench.tmp / "big.bin"
        if cases & {"put", "get"}:
            make_random_file(big, args.big_mib * MIB)
        if "put" in cases:
            for rep in range(1, args.reps + 1):
                b = bench.boto3("put-file", big)
                d = bench.dds("put", "-s", big, "--overwrite")
                peak = max(peak, d["rss"])
                ratios["put"].append(d["wall"] / b["wall"])
                print(_line(rep, f"put {args.big_mib}M", "boto3", b), flush=True)
                print(_line(rep, f"put {args.big_mib}M", "dds", d,
                            f"  ratio {d['wall'] / b['wall']:.2f}"), flush=True)
        if "get" in cases:
            bench.sink_store(True)
            bench.dds("put", "-s", big, "--overwrite")  # the object to download (untimed)
            bench.sink_store(False)
            bucket, key = bench.stored_object()
            for rep in range(1, args.reps + 1):
                dest = bench.tmp / "got"
                b = bench.boto3("get-file", bucket, key, bench.tmp / "got.bin")
                (bench.tmp / "got.bin").unlink()
                d = bench.dds("get", "-s", big.name, "-d", dest)
                shutil.rmtree(dest)
                ratios["get"].append(d["wall"] / b["wall"])
                print(_line(rep, f"get {args.big_mib}M", "boto3", b), flush=True)
                print(_line(rep, f"get {args.big_mib}M", "dds", d,
                            f"  ratio {d['wall'] / b['wall']:.2f}"), flush=True)
            # frees the sink's copy: the next put of big.bin replaces the object
        big.unlink(missing_ok=True)
        if "small" in cases:
            small = bench.tmp / "small"
            small.mkdir()
            for i in range(args.small):
                (small / f"f{i:05d}.bin").write_bytes(os.urandom(args.small_bytes))
            for rep in range(1, args.reps + 1):
                b = bench.boto3("put-folder", small, str(args.threads))
                # A fresh folder per repetition: every run creates the same rows (an
                # overwrite would also retire versions and delete the old objects).
                d = bench.dds("put", "-s", small, "-d", f"rep{rep}", "--num-threads",
                              str(args.threads))
                ratios["small"].append(d["wall"] / b["wall"])
                case = f"{args.small}x{args.small_bytes}"
                print(_line(rep, case, "boto3", b, f"  {args.small / b['wall']:.0f} files/s"),
                      flush=True)
                print(_line(rep, case, "dds", d, f"  {args.small / d['wall']:.0f} files/s"
                            f"  ratio {d['wall'] / b['wall']:.2f}"), flush=True)
            shutil.rmtree(small)
        if "huge" in cases and args.huge_gib:
            huge = bench.tmp / "huge.bin"
            make_random_file(huge, args.huge_gib * 1024 * MIB)
            for rep in range(1, args.reps + 1):
                b = bench.boto3("put-file", huge)
                d = bench.dds("put", "-s", huge, "--overwrite")
                peak = max(peak, d["rss"])
                print(_line(rep, f"put {args.huge_gib}G", "boto3", b), flush=True)
                print(_line(rep, f"put {args.huge_gib}G", "dds", d,
                            f"  ratio {d['wall'] / b['wall']:.2f}"), flush=True)
            huge.unlink()

        def med(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}" if xs else "n/a"

        print(f"put_vs_boto3_1g={med(ratios['put'])} put_vs_boto3_small={med(ratios['small'])} "
              f"get_vs_boto3_1g={med(ratios['get'])} put_peak_rss_mb={peak or 'n/a'}")
    except SystemExit:
        log = bench.tmp / "server.log"
        if log.exists():  # the server's own account of what failed (it goes with tmp)
            lines = log.read_text(errors="replace").splitlines()
            errors = [ln for ln in lines if '"ERROR"' in ln or "Traceback" in ln]
            print("# server log, errors (last 5):", *errors[-5:], sep="\n", file=sys.stderr)
        raise
    finally:
        bench.close()


if __name__ == "__main__":
    main()
