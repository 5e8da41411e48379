"""Benchmark: DDS Crypt4GH engine vs the legacy dds-cli prepare path vs the crypt4gh CLI.

Run from the repository root with the project's virtualenv (see bench/README.md)::

    .venv/bin/python bench/crypto.py                      # 1 GiB random + 512 MiB FASTQ, 3 reps
    .venv/bin/python bench/crypto.py --size-random 64 --size-fastq 32 --reps 1   # quick run

dds-cli 2.15.1 runs from its own virtualenv, ``bench/.venv-dds-cli`` (git-ignored; made on
first use with ``pip install dds-cli==2.15.1``, and its version checked at every start):
dds-cli 2.15.1 pins a boto3 that conflicts with ours, and pip would otherwise quietly pick
dds-cli 1.1.0, whose decrypt crashes. The crypt4gh CLI is the project virtualenv's.

Every measurement runs in its own child process on the same input files (in the page
cache), interleaved tool by tool, ``--reps`` times; reported per run: MB/s (10^6 bytes of
ORIGINAL data per second), wall and CPU-seconds (user+system) of that process, peak RSS.
"ours" is timed both into a file (``encrypt_file`` / ``decrypt_file``) and to /dev/null
(the ciphertext iterated as ``dds data put`` does; decryption verifying the SHA-256 with
the plaintext discarded), plus "ours x2": two files in flight in one process (what a
multi-file put does). The "2-process ceiling" is two processes, each doing the minimal
work in one tight loop on half the data (read + SHA-256 + ChaCha20-Poly1305, + zstd with
the engine's settings for FASTQ), at the same time: what two cores can do at all.
"pwrite new-file" is the cost of writing a new file of the input's size from one thread:
what every "to a file" row through the page cache pays on top of its work on this VM
(see FRESH_WAIT: each run that writes a file starts with earlier outputs removed and
freed memory returned to the host). The last line is
``ratio_vs_dds_cli_random=<x> ratio_vs_dds_cli_fastq=<y>`` (our encrypt to /dev/null vs
dds-cli's encrypt, medians of the repetitions).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
DDS_CLI_VERSION = "2.15.1"
DDS_CLI_VENV = REPO / "bench" / ".venv-dds-cli"


# --------------------------------------------------------------------------- input data


def make_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n


def make_fastq(path: Path, size: int, seed: int = 42) -> None:
    """Illumina-like FASTQ: structured headers, random bases, skewed quality scores."""
    rnd = random.Random(seed)
    seq_tab = bytes(b"ACGT"[i % 4] for i in range(256))
    qual_tab = bytes((b"F" * 11 + b":" * 2 + b"," + b"#" + b"F")[i % 16] for i in range(256))
    rlen = 150
    written = 0
    tile = 1101
    with open(path, "wb") as f:
        while written < size:
            raw = os.urandom(2 * rlen * 2000)
            recs = []
            for i in range(2000):
                s = raw[2 * i * rlen : (2 * i + 1) * rlen].translate(seq_tab)
                q = raw[(2 * i + 1) * rlen : (2 * i + 2) * rlen].translate(qual_tab)
                x, y = rnd.randrange(1000, 32000), rnd.randrange(1000, 32000)
                recs.append(
                    b"@A00123:45:HXXXXDSXX:1:%d:%d:%d 1:N:0:ACGTACGT+TTGACCAA\n%s\n+\n%s\n"
                    % (tile, x, y, s, q)
                )
                if rnd.random() < 0.001:
                    tile += 1
            block = b"".join(recs)[: size - written]
            f.write(block)
            written += len(block)


# --------------------------------------------------------------------------- workers
# Each worker runs in a fresh process and prints one JSON line.


def _c4gh_keys(d: Path):
    sys.path.insert(0, str(REPO))
    from c4gh import keyfiles

    sk = keyfiles.load_private_key((d / "bench.sec").read_bytes(), "bench")
    return sk, keyfiles.load_public_key((d / "bench.pub").read_bytes())


def worker_ours_enc(src: str, dst: str, d: str) -> dict:
    sys.path.insert(0, str(REPO))
    import c4gh

    _, pk = _c4gh_keys(Path(d))
    t = time.perf_counter()
    res = c4gh.encrypt_file(src, dst, [pk])
    dt = time.perf_counter() - t
    meta = {"sha256": res.sha256, "compressed": res.compressed}
    Path(dst + ".json").write_text(json.dumps(meta))
    return {"seconds": dt, "stored": res.stored_size, "compressed": res.compressed}


def worker_ours_dec(src: str, dst: str, d: str) -> dict:
    sys.path.insert(0, str(REPO))
    import c4gh

    sk, _ = _c4gh_keys(Path(d))
    meta = json.loads(Path(src + ".json").read_text())
    t = time.perf_counter()
    c4gh.decrypt_file(src, dst, sk, expected_sha256=meta["sha256"], compressed=meta["compressed"])
    return {"seconds": time.perf_counter() - t, "verified_sha256": True}


def _ours_keys(d: str):
    sys.path.insert(0, str(REPO))
    return _c4gh_keys(Path(d))


def worker_ours_enc_null(src: str, dst: str, d: str) -> dict:
    """Encrypt and discard the chunks (as `dds data put` iterates them)."""
    import c4gh

    _, pk = _ours_keys(d)
    t = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        enc = c4gh.Encryptor(f, [pk])
        for _chunk in enc.chunks(reuse=True):
            pass
    return {"seconds": time.perf_counter() - t, "stored": enc.result.stored_size,
            "compressed": enc.result.compressed}


def worker_ours_enc_x2(src: str, dst: str, d: str) -> dict:
    """Two files in flight (the same input twice), discarded; MB/s of both together."""
    import threading

    import c4gh

    _, pk = _ours_keys(d)
    results = []

    def one() -> None:
        with open(src, "rb", buffering=0) as f:
            enc = c4gh.Encryptor(f, [pk])
            for _chunk in enc.chunks(reuse=True):
                pass
        results.append(enc.result)

    t = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"seconds": time.perf_counter() - t, "files": 2,
            "stored": results[0].stored_size, "compressed": results[0].compressed}


def worker_ours_dec_null(src: str, dst: str, d: str) -> dict:
    """Decrypt, verify the SHA-256, discard the plaintext."""
    import c4gh
    from c4gh.stream import _iter_reusing

    sk, _ = _ours_keys(d)
    meta = json.loads(Path(src + ".json").read_text())
    t = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        head = f.read(1 << 16)
        hlen = c4gh.header_length(head)
        f.seek(hlen)
        dec = c4gh.Decryptor(header=head[:hlen], reader_sk=sk, compressed=meta["compressed"],
                             expected_sha256=meta["sha256"])
        dec.run(_iter_reusing(f), lambda _piece: None)
    return {"seconds": time.perf_counter() - t, "verified_sha256": True}


def worker_ceiling(src: str, span: str, d: str) -> dict:
    """One half of the 2-process ceiling: read + SHA-256 (+ zstd) + ChaCha20-Poly1305 of
    ``span`` = "offset:length:compress:start_at" in one thread, no pipeline; both halves
    start at the wall-clock time ``start_at`` (after their imports) and report its end."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    offset, length, compress, start_at = span.split(":")
    offset, length = int(offset), int(length)
    aead = ChaCha20Poly1305(os.urandom(32))
    sha = hashlib.sha256()
    buf = bytearray(1 << 20)
    out = bytearray(65536 + 16)
    nonce = os.urandom(12)
    from c4gh import compression  # the engine's zstd settings, one thread

    chunker = compression.make_compressor(0).chunker(chunk_size=65536) \
        if compress == "1" else None
    while time.time() < float(start_at):
        time.sleep(0.001)
    with open(src, "rb", buffering=0) as f:
        f.seek(offset)
        left = length
        while left:
            n = f.readinto(memoryview(buf)[: min(left, len(buf))])
            if not n:
                break
            left -= n
            mv = memoryview(buf)[:n]
            sha.update(mv)
            segs = chunker.compress(mv) if chunker else \
                (mv[i:i + 65536] for i in range(0, n, 65536))
            for seg in segs:
                aead.encrypt_into(nonce, seg, None, memoryview(out)[: len(seg) + 16])
    return {"end": time.time(), "bytes": length - left}


class _NullProgress:
    def advance(self, *_a, **_k):
        pass


def _dds_keys():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    # fixed project key for the run (derived from a constant seed: bench only)
    sk = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32)))
    raw = serialization.Encoding.Raw
    priv = sk.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = sk.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return priv.hex().upper(), pub.hex().upper()


def worker_dds_enc(src: str, dst: str, d: str) -> dict:
    """dds-cli's own prepare path: is_compressed -> stream_from_file -> encrypt_filechunks."""
    import types

    from dds_cli import file_compressor as fc
    from dds_cli import file_encryptor as fe
    from dds_cli.file_handler_local import LocalFileHandler

    path = Path(src)
    t = time.perf_counter()
    with fc.Compressor() as comp:
        is_compressed, _ = comp.is_compressed(file=path)
    # LocalFileHandler.stream_from_file only uses self.data and self.read_file
    fake = types.SimpleNamespace(
        data={"f": {"path_raw": path, "compressed": is_compressed}},
        read_file=LocalFileHandler.read_file,
    )
    chunks = LocalFileHandler.stream_from_file(fake, "f")
    enc = fe.Encryptor(project_keys=_dds_keys())
    ok, msg = enc.encrypt_filechunks(
        chunks=chunks, outfile=Path(dst), progress=(_NullProgress(), 0)
    )
    dt = time.perf_counter() - t
    if not ok:
        raise RuntimeError(msg)
    meta = {
        "public": enc.get_public_component_hex(private_key=enc.my_private),
        "salt": enc.salt,
        "compressed": not is_compressed,
        "checksum": fake.data["f"]["checksum"],
    }
    Path(dst + ".json").write_text(json.dumps(meta))
    return {"seconds": dt, "stored": os.path.getsize(dst), "compressed": not is_compressed}


def worker_dds_dec(src: str, dst: str, d: str) -> dict:
    """dds-cli's get path: Decryptor.decrypt_file -> decompress_filechunks / write_file."""
    from dds_cli import file_compressor as fc
    from dds_cli import file_encryptor as fe
    from dds_cli.file_handler_remote import RemoteFileHandler

    meta = json.loads(Path(src + ".json").read_text())
    t = time.perf_counter()
    dec = fe.Decryptor(project_keys=_dds_keys(), peer_public=meta["public"],
                       key_salt=meta["salt"], files_directory=Path(d))
    chunks = dec.decrypt_file(infile=Path(src), outfile=Path(dst))
    write = (
        fc.Compressor.decompress_filechunks if meta["compressed"] else RemoteFileHandler.write_file
    )
    ok, msg = write(chunks=chunks, outfile=Path(dst), files_directory=Path(d))
    dt = time.perf_counter() - t
    if not ok:
        raise RuntimeError(msg)
    # dds-cli only verifies the checksum with --verify-checksum (off by default): not timed
    return {"seconds": dt, "verified_sha256": False}


def worker_write_probe(src: str, dst: str, d: str) -> dict:
    """Write ``src``'s size of new file in 1 MiB pwrites from one thread (the VM's cost of
    new page-cache pages; ``dst`` is removed after)."""
    size = os.path.getsize(src)
    buf = bytearray(os.urandom(MiB))
    t = time.perf_counter()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for off in range(0, size, MiB):
            os.pwrite(fd, memoryview(buf)[: min(MiB, size - off)], off)
    finally:
        os.close(fd)
    return {"seconds": time.perf_counter() - t}


WORKERS = {
    "write-probe": worker_write_probe,
    "ours-enc": worker_ours_enc,
    "ours-enc-null": worker_ours_enc_null,
    "ours-enc-x2": worker_ours_enc_x2,
    "ours-dec": worker_ours_dec,
    "ours-dec-null": worker_ours_dec_null,
    "ceiling": worker_ceiling,
    "dds-enc": worker_dds_enc,
    "dds-dec": worker_dds_dec,
}


# --------------------------------------------------------------------------- orchestration


TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def run_child(argv: list[str], stdin=None, stdout=None, env=None
              ) -> tuple[float, int, str, float]:
    """Run a child; return (wall s, peak RSS bytes of that child, its stdout, its CPU-s).

    Linux carries a parent's peak RSS over fork+exec into the child's ru_maxrss, so the
    child is started through the tiny GNU ``time`` binary when available (its own report
    of the grandchild's peak is then accurate); otherwise wait4's figure is used.
    """
    rss_file = None
    if TIME:
        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        argv = [TIME, "-f", "%M", "-o", rss_file, *argv]
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout or subprocess.PIPE, env=env)
    out = b""
    if stdout is None:
        out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{argv} failed with exit code {proc.returncode}")
    cpu = ru.ru_utime + ru.ru_stime
    rss = ru.ru_maxrss * 1024
    if rss_file:
        try:
            rss = int(Path(rss_file).read_text().split()[-1]) * 1024
        finally:
            os.unlink(rss_file)
    return wall, rss, out.decode(), cpu


#: Seconds to wait before a run that writes a file. This VM (Firecracker, virtio-balloon
#: with free page reporting, order 9) gives guest memory that has been free for a few
#: seconds back to the host, and the next touch of it faults in the host: writing a new
#: 1 GiB file cost 0.3 CPU-s right after 1 GiB was freed, 0.5 after 0.5 s, 0.65 after
#: 1 s, 1.3 after 2 s, 2.9 after 5 s and 2.9-3.3 after 10 s (load ~2, 2026-12-02). A tool
#: that started within a second of the previous tool's unlink wrote into warm pages, one
#: that did not paid ~2.5 CPU-s more per GiB; pre-touching memory once at the start cannot
#: help (it is reported back within seconds). So every run that writes a file starts
#: after the outputs of earlier runs are removed and FRESH_WAIT seconds have passed: all
#: tools write into the same (fresh) kind of memory, the steady state of this VM.
FRESH_WAIT = 6.0


def settle(writes_file: bool = False) -> None:
    """Flush dirty pages left by the previous step (untimed), so no tool pays for another's
    writeback; each tool still pays for the writeback its own output triggers. Before a run
    that writes a file, also wait until freed memory has gone back to the host (above)."""
    os.sync()
    time.sleep(FRESH_WAIT if writes_file else 1)


#: The workers that write a file (the crypt4gh CLI always does).
FILE_WRITERS = {"ours-enc", "ours-dec", "dds-enc", "dds-dec", "write-probe"}


def cache_input(path: Path) -> None:
    """Read ``path`` once (untimed) so that every tool's input is in the page cache: our
    encrypt_file writes with O_DIRECT (nothing cached), the other tools' outputs are."""
    buf = bytearray(8 * MiB)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def run_worker(name: str, src: Path, dst: Path, d: Path) -> dict:
    cache_input(src)
    settle(name in FILE_WRITERS)
    python = DDS_CLI_VENV / "bin" / "python" if name.startswith("dds-") else sys.executable
    argv = [str(python), __file__, "--worker", name, str(src), str(dst), str(d)]
    _, rss, out, cpu = run_child(argv)
    res = json.loads(out.strip().splitlines()[-1])
    res["rss"], res["cpu"] = rss, cpu
    return res


def run_ceiling(src: Path, size: int, compress: bool, d: Path) -> dict:
    """Two processes at once, each on half of ``src``: MB/s of the whole."""
    settle()
    half = size // 2
    procs = []
    start_at = time.time() + 2.0  # both have imported everything by then
    for off, n in ((0, half), (half, size - half)):
        argv = [sys.executable, __file__, "--worker", "ceiling", str(src),
                f"{off}:{n}:{int(compress)}:{start_at}", str(d)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE))
    cpu, end = 0.0, 0.0
    for p in procs:
        end = max(end, json.loads(p.stdout.read().strip().splitlines()[-1])["end"])
        _, status, ru = os.wait4(p.pid, 0)
        cpu += ru.ru_utime + ru.ru_stime  # includes start-up and the wait (a few ms)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError("ceiling worker failed")
    return {"seconds": end - start_at, "rss": 0, "cpu": cpu}


def ensure_dds_cli() -> str:
    """dds-cli pinned in its own virtualenv (made on first use); returns its version."""
    python = DDS_CLI_VENV / "bin" / "python"
    if not python.exists():
        print(f"# making {DDS_CLI_VENV} with dds-cli=={DDS_CLI_VERSION}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DDS_CLI_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"dds-cli=={DDS_CLI_VERSION}"], check=True)
    got = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                          "print(m.version('dds_cli'))"], capture_output=True, text=True)
    version = got.stdout.strip()
    if version != DDS_CLI_VERSION:
        raise SystemExit(f"{DDS_CLI_VENV} has dds-cli {version or '(none)'}, not "
                         f"{DDS_CLI_VERSION}: remove it and run again ({got.stderr.strip()})")
    return version


def run_c4gh_cli(mode: str, src: Path, dst: Path, d: Path) -> dict:
    cli = Path(sys.executable).parent / "crypt4gh"
    if not cli.exists():
        cli = Path(shutil.which("crypt4gh") or "crypt4gh")
    cache_input(src)
    settle(writes_file=True)
    env = dict(os.environ, C4GH_PASSPHRASE="bench")
    args = (
        [str(cli), "encrypt", "--recipient_pk", str(d / "bench.pub")]
        if mode == "enc"
        else [str(cli), "decrypt", "--sk", str(d / "bench.sec")]
    )
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        wall, rss, _, cpu = run_child(args, stdin=fin, stdout=fout, env=env)
    return {"seconds": wall, "rss": rss, "cpu": cpu,
            "stored": os.path.getsize(dst) if mode == "enc" else None}


def fmt_mb(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-random", type=int, default=1024, help="MiB of random data")
    ap.add_argument("--size-fastq", type=int, default=512, help="MiB of synthetic FASTQ")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (interleaved)")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--skip-c4gh-cli", action="store_true")
    ap.add_argument("--worker", nargs=4, metavar=("NAME", "SRC", "DST", "DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        name, src, dst, d = args.worker
        if not name.startswith("dds-"):
            sys.path.insert(0, str(REPO))
        print(json.dumps(WORKERS[name](src, dst, d)))
        return

    dds_version = ensure_dds_cli()
    sys.path.insert(0, str(REPO))
    import c4gh

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dds-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        sk, _ = c4gh.generate_keypair()
        c4gh.write_keypair(sk, base / "bench.sec", base / "bench.pub", "bench")
        inputs = {
            "random": (base / "random.bin", args.size_random * MiB, make_random),
            "fastq": (base / "reads.fastq", args.size_fastq * MiB, make_fastq),
        }
        for _name, (path, size, maker) in inputs.items():
            t = time.perf_counter()
            maker(path, size)
            print(f"# generated {path.name}: {size / MiB:.0f} MiB in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
        print(f"# cpus={os.cpu_count()} python={sys.version.split()[0]} dds-cli={dds_version} "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} dir={base}")
        print(f"{'rep':3s} {'data':6s} {'tool':10s} {'op':9s} {'MB/s':>7s} {'wall s':>7s} "
              f"{'cpu s':>6s} {'RSS MB':>7s} {'stored MB':>10s} {'load':>5s}  notes")
        results: dict = {}

        def report(rep, data, tool, op, size, res, note=""):
            speed = fmt_mb(size * res.get("files", 1), res["seconds"])
            stored = f"{res['stored'] / 1e6:10.2f}" if res.get("stored") else f"{'':10s}"
            print(f"{rep:3d} {data:6s} {tool:10s} {op:9s} {speed:7.1f} {res['seconds']:7.2f} "
                  f"{res['cpu']:6.2f} {res['rss'] / 1e6:7.1f} {stored} "
                  f"{os.getloadavg()[0]:5.2f}  {note}", flush=True)
            results.setdefault((data, tool, op), []).append((speed, res))

        for rep in range(1, args.reps + 1):
            for data, (src, size, _maker) in inputs.items():
                enc, dec = base / f"{data}.enc", base / f"{data}.dec"
                r = run_ceiling(src, size, data == "fastq", base)
                report(rep, data, "2-proc-max", "enc-null", size, r,
                       "2 processes x 1 thread: read+SHA-256+ChaCha20" +
                       ("+zstd (ours, 1 thread)" if data == "fastq" else ""))
                r = run_worker("write-probe", src, dec, base)
                dec.unlink()
                report(rep, data, "pwrite", "new-file", size, r,
                       "1 thread writes a new file of this size (1 MiB pwrites): the VM's "
                       "cost of fresh page-cache pages")
                r = run_worker("ours-enc-null", src, enc, base)
                report(rep, data, "ours", "enc-null", size, r, f"compressed={r['compressed']}")
                r = run_worker("ours-enc-x2", src, enc, base)
                report(rep, data, "ours x2", "enc-null", size, r, "2 files in flight")
                r = run_worker("ours-enc", src, enc, base)
                report(rep, data, "ours", "enc-file", size, r, f"compressed={r['compressed']}")
                r = run_worker("ours-dec-null", enc, dec, base)
                report(rep, data, "ours", "dec-null", size, r, "SHA-256 verified")
                r = run_worker("ours-dec", enc, dec, base)
                report(rep, data, "ours", "dec-file", size, r, "SHA-256 verified")
                assert _same(src, dec), "ours: round trip mismatch"
                for p in (enc, dec):
                    p.unlink()
                r = run_worker("dds-enc", src, enc, base)
                report(rep, data, "dds-cli", "enc-file", size, r,
                       f"compressed={r['compressed']}")
                r = run_worker("dds-dec", enc, dec, base)
                report(rep, data, "dds-cli", "dec-file", size, r,
                       "no checksum check (its default)")
                assert _same(src, dec), "dds-cli: round trip mismatch"
                for p in (enc, dec):
                    p.unlink()
                if not args.skip_c4gh_cli:
                    r = run_c4gh_cli("enc", src, enc, base)
                    report(rep, data, "c4gh-cli", "enc-file", size, r, "no compression")
                    r = run_c4gh_cli("dec", enc, dec, base)
                    report(rep, data, "c4gh-cli", "dec-file", size, r)
                    assert _same(src, dec), "crypt4gh: round trip mismatch"
                    for p in (enc, dec):
                        p.unlink()

        def med(data, tool, op):
            return statistics.median(x[0] for x in results[(data, tool, op)])

        def ratio(data, op, other, other_op=None):
            return med(data, "ours", op) / med(data, other, other_op or op)

        print("# medians of the repetitions:")
        for data in inputs:
            ceiling = med(data, "2-proc-max", "enc-null")
            probe = statistics.median(x[1]["cpu"] for x in results[(data, "pwrite", "new-file")])
            line = [f"new file {probe:.2f} CPU-s (1 thread, fresh pages)",
                    f"enc-null {med(data, 'ours', 'enc-null'):.0f} MB/s = "
                    f"{med(data, 'ours', 'enc-null') / ceiling:.2f} of the 2-process ceiling "
                    f"({ceiling:.0f} MB/s); 2 files in flight "
                    f"{med(data, 'ours x2', 'enc-null'):.0f} MB/s = "
                    f"{med(data, 'ours x2', 'enc-null') / ceiling:.2f}",
                    f"enc-null x{ratio(data, 'enc-null', 'dds-cli', 'enc-file'):.2f} vs dds-cli",
                    f"enc-file x{ratio(data, 'enc-file', 'dds-cli'):.2f} vs dds-cli",
                    f"dec-file x{ratio(data, 'dec-file', 'dds-cli'):.2f} vs dds-cli",
                    f"dec-null x{ratio(data, 'dec-null', 'dds-cli', 'dec-file'):.2f} vs dds-cli"]
            if not args.skip_c4gh_cli:
                line += [f"dec-file x{ratio(data, 'dec-file', 'c4gh-cli'):.2f} vs crypt4gh",
                         f"enc-file x{ratio(data, 'enc-file', 'c4gh-cli'):.2f} vs crypt4gh"]
            print(f"# {data}: " + "; ".join(line))
        ours_st = results[("fastq", "ours", "enc-file")][0][1]["stored"]
        dds_st = results[("fastq", "dds-cli", "enc-file")][0][1]["stored"]
        print(f"# fastq stored size: ours {ours_st} B (+124 B header in DB), dds-cli {dds_st} B "
              f"-> ours/dds = {ours_st / dds_st:.4f}")
        print(f"ratio_vs_dds_cli_random={ratio('random', 'enc-null', 'dds-cli', 'enc-file'):.2f} "
              f"ratio_vs_dds_cli_fastq={ratio('fastq', 'enc-null', 'dds-cli', 'enc-file'):.2f}")
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


def _same(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 * MiB), fb.read(8 * MiB)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    main()
