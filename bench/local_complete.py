"""Benchmark: the local backend's multipart complete (issue #19), and a big `dds data put`
against local storage.

Run from the repository root::

    .venv/bin/python bench/local_complete.py --gib 10                 # 3 reps, this tree
    .venv/bin/python bench/local_complete.py --gib 1 --baseline fbe194a   # + the code before
    .venv/bin/python bench/local_complete.py --gib 0 --put-gib 20 --reps 1  # the real put

**Backend** (``--gib`` N, 0 skips it): per repetition a multipart upload of N GiB is
written through the backend's own API (``write_part``, the function the signed part URL
calls; parts of the size the upload service picks for N GiB, a random 64 MiB block
repeated), then timed: ``list_parts`` (what resume and complete ask first),
``complete_multipart`` and a full read of the object through ``iter_range`` (what the
GET view and the portal stream), each in this process. ``--baseline REV`` runs the same
with ``transfers/storage/local.py`` as it was at REV (``git show``; loaded as a module of
its own), interleaved with the tree's. The page cache is not dropped (no root): the data
just written is in memory, which makes a re-reading complete look *faster* than it would
on a cold server.

**Put** (``--put-gib`` N, 0 skips it; needs about 2 x N GiB free under ``--dir``): a DDS
server under gunicorn with the production entrypoint's defaults (``--timeout 120``,
3 workers x 4 threads, local storage, PostgreSQL ``--database-url``), a unit, staff and a
project, the real `dds auth login`, then ``dds data put`` of an N GiB random file, timed
per repetition, with the server's CPU-s, and the object's size checked against the
catalogue.

Every line carries the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

PY = sys.executable
BIN = Path(PY).parent
GIB = 1024 ** 3
MIB = 1024 ** 2


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ddsite.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def _baseline_module(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:transfers/storage/local.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="dds-baseline-")) / "local_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("transfers.storage._local_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _upload_part_size(size: int) -> int:
    """The part size the upload service gives an object of ``size`` stored bytes."""
    from transfers.services.uploads import part_size_for

    return int(part_size_for(size))


def backend_rep(impl: str, backend_cls, root: Path, size: int, part: int,
                block: bytes) -> dict:
    backend = backend_cls(root=root)
    bucket, key = "bench", f"obj{os.getpid()}"
    backend.create_bucket(bucket)
    upload_id = backend.start_multipart(bucket, key)
    t = time.perf_counter()
    etags = []
    n, done = 0, 0
    while done < size:
        n += 1
        this = min(part, size - done)

        def chunks(this: int = this, start: int = done):
            at = start
            left = this
            while left:
                off = at % len(block)
                piece = block[off:off + min(left, MIB, len(block) - off)]
                yield piece
                at += len(piece)
                left -= len(piece)

        if impl == "tree":
            etags.append((n, backend.write_part(bucket, upload_id, n, chunks(),
                                                part_size=part)))
        else:
            etags.append((n, backend.write_part(bucket, upload_id, n, chunks())))
        done += this
    write = time.perf_counter() - t
    load_before = _load()
    t = time.perf_counter()
    listed = backend.list_parts(bucket, key, upload_id)
    t_list = time.perf_counter() - t
    assert [(p.number, p.etag) for p in listed] == etags
    t = time.perf_counter()
    backend.complete_multipart(bucket, key, upload_id, etags)
    t_complete = time.perf_counter() - t
    assert backend.head_size(bucket, key) == size
    t = time.perf_counter()
    got = 0
    md5 = hashlib.md5(usedforsecurity=False)
    first = True
    for piece in backend.iter_range(bucket, key, 0, size - 1):
        got += len(piece)
        if first:  # a spot check of the content, not a hash of the whole (that is CPU)
            md5.update(piece)
            first = False
    t_get = time.perf_counter() - t
    assert got == size
    backend.delete_objects(bucket, [key])
    return {"parts": n, "write": write, "list": t_list, "complete": t_complete,
            "get": t_get, "load": load_before}


def run_backend(args) -> None:
    _django()
    from transfers.storage.local import LocalBackend

    size = int(args.gib * GIB)
    part = _upload_part_size(size)
    impls = [("tree", LocalBackend)]
    if args.baseline:
        impls.insert(0, (f"base-{args.baseline}", _baseline_module(args.baseline).LocalBackend))
    block = os.urandom(64 * MIB)
    print(f"# backend: {args.gib} GiB in parts of {part} B; cpus={os.cpu_count()} "
          f"load average {_load()}; dir={args.dir}", flush=True)
    print("rep impl          parts  write s  list_parts s  complete s  list+complete s"
          "  get(read) s   load(1/5/15)")
    totals: dict[str, list[float]] = {}
    for rep in range(1, args.reps + 1):
        for impl, cls in impls:
            root = Path(tempfile.mkdtemp(prefix="dds-bench-local-", dir=args.dir))
            try:
                r = backend_rep("tree" if impl == "tree" else "base", cls, root, size, part,
                                block)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            both = r["list"] + r["complete"]
            totals.setdefault(impl, []).append(both)
            print(f"{rep:3d} {impl:12s} {r['parts']:6d} {r['write']:8.2f} "
                  f"{r['list']:13.3f} {r['complete']:11.3f} {both:16.3f} {r['get']:12.2f}"
                  f"   {r['load']}", flush=True)
    for impl, xs in totals.items():
        xs = sorted(xs)
        print(f"# {impl}: list+complete median {xs[len(xs) // 2]:.3f} s "
              f"(all: {', '.join(f'{x:.3f}' for x in totals[impl])})")


# --------------------------------------------------------------------------- the real put


def run_put(args) -> None:
    from api_scale import _ensure_database  # type: ignore[import-not-found]
    from upload import (  # type: ignore[import-not-found]
        SETUP,
        _free_port,
        _proc_cpu,
        _wait_http,
        make_random_file,
    )

    need = 2 * args.put_gib * GIB + 2 * GIB
    free = shutil.disk_usage(args.dir or tempfile.gettempdir()).free
    if free < need:
        print(f"# put {args.put_gib} GiB skipped: {free / GIB:.1f} GiB free under "
              f"{args.dir or tempfile.gettempdir()}, {need / GIB:.1f} needed")
        return
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-put-", dir=args.dir))
    procs: list[subprocess.Popen] = []
    try:
        _ensure_database(args.database_url)
        url = f"http://127.0.0.1:{_free_port()}"
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("DDS_", "DJANGO_", "AWS_"))},
               "DATABASE_URL": args.database_url, "DEBUG": "0",
               "SECRET_KEY": os.urandom(32).hex(), "ALLOWED_HOSTS": "127.0.0.1",
               "SECURE_SSL_REDIRECT": "0", "DDS_VAR_DIR": str(tmp / "var"),
               "DDS_STORAGE_BACKEND": "local",
               "DDS_LOCAL_STORAGE_ROOT": str(tmp / "storage"),
               "DDS_LOCAL_STORAGE_URL": url, "LOG_LEVEL": "WARNING",
               "DDS_KDF_MEMORY_KIB": "65536", "DJANGO_SETTINGS_MODULE": "ddsite.settings",
               "DDS_ALLOW_EMBEDDED": "1", "DDS_BEHIND_PROXY": "0"}
        (tmp / "var").mkdir()
        subprocess.run([PY, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO,
                       env=env, check=True)
        out = subprocess.run([PY, "manage.py", "shell", "-c", SETUP], cwd=REPO, env=env,
                             check=True, capture_output=True, text=True).stdout
        setup = json.loads(out.split("SETUP", 1)[1])
        # The production entrypoint's defaults (docker/entrypoint.sh).
        server = subprocess.Popen(
            [BIN / "gunicorn", "ddsite.wsgi:application", "-b", url[7:], "-k", "gthread",
             "--workers", "3", "--threads", "4", "--timeout", "120", "--log-level",
             "warning"], cwd=REPO, env=env, stderr=open(tmp / "server.log", "wb"))
        procs.append(server)
        _wait_http(url + "/healthz")
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith(("DDS_", "DJANGO"))}
        cli_env.update(DDS_CONFIG_DIR=str(tmp / "cfg"), DDS_URL=url, PYTHONPATH=str(REPO),
                       DDS_PASSWORD=setup["password"])
        _login(tmp, setup, cli_env)
        src = tmp / "src"
        src.mkdir()
        big = src / f"big{args.put_gib}g.bin"
        make_random_file(big, int(args.put_gib * GIB))
        print(f"# put: {args.put_gib} GiB through `dds data put` to local storage "
              f"(gunicorn --timeout 120); cpus={os.cpu_count()} load average {_load()}",
              flush=True)
        for rep in range(1, args.reps + 1):
            server0 = _proc_cpu(server.pid)
            load = _load()
            t = time.perf_counter()
            r = subprocess.run([PY, "-m", "cli", "data", "put", "-p", setup["project"],
                                "-s", str(big), "--destination", f"rep{rep}", "--silent"],
                               cwd=REPO, env=cli_env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            stored = [p for p in (tmp / "storage").rglob("*")
                      if p.is_file() and ".multipart" not in p.parts]
            sizes = sorted(p.stat().st_size for p in stored)
            print(f"rep {rep} put {args.put_gib}G  exit {r.returncode}  wall {wall:7.1f} s  "
                  f"{args.put_gib * GIB / MIB / wall:6.0f} MiB/s  server cpu "
                  f"{_proc_cpu(server.pid) - server0:6.1f} s  objects {len(stored)} "
                  f"largest {sizes[-1] if sizes else 0} B  load {load}", flush=True)
            if r.returncode:
                print("# stderr: " + r.stderr[-2000:])
            for p in stored:  # room for the next repetition
                p.unlink()
        errors = [line for line in (tmp / "server.log").read_text(errors="replace")
                  .splitlines() if "Traceback" in line or "WORKER TIMEOUT" in line]
        print(f"# server log: {len(errors)} tracebacks / worker timeouts")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _login(tmp: Path, setup: dict, cli_env: dict) -> None:
    import re

    mail = tmp / "var" / "mail"
    seen = set(mail.glob("*")) if mail.exists() else set()
    proc = subprocess.Popen([PY, "-m", "cli", "auth", "login", "-u", setup["username"]],
                            cwd=REPO, env=cli_env, stdin=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    code = None
    while code is None and time.monotonic() < deadline:
        for f in set(mail.glob("*")) - seen if mail.exists() else ():
            text = f.read_text(errors="replace")
            found = re.search(r"\b(\d{8})\b", text)
            if found and setup["email"] in text:
                code = found.group(1)
        time.sleep(0.1)
    if code is None:
        raise SystemExit("no login code arrived")
    proc.communicate(code + "\n", timeout=120)
    if proc.returncode:
        raise SystemExit("dds auth login failed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=10, help="backend case size (0: skip)")
    p.add_argument("--put-gib", type=float, default=0, help="dds data put size (0: skip)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--baseline", default="", help="also run local.py as of this revision")
    p.add_argument("--dir", default=None, help="where the data goes (default: $TMPDIR)")
    p.add_argument("--database-url",
                   default="postgres://postgres@127.0.0.1:5432/dds_bench_local")
    args = p.parse_args()
    if args.gib:
        run_backend(args)
    if args.put_gib:
        run_put(args)


if __name__ == "__main__":
    main()
