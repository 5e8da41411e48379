"""Benchmark: DDS Crypt4GH engine vs the legacy dds-cli prepare path vs the crypt4gh CLI.

Run from the repository root with the bench virtualenv (see bench/README.md)::

    .venv-bench/bin/python bench/crypto.py                      # 1 GiB random + 512 MiB FASTQ
    .venv-bench/bin/python bench/crypto.py --size-random 64 --size-fastq 32   # quick run

Every measurement runs in its own child process on the same input files, so the peak RSS
reported is that of the process doing the work (from ``wait4``). Throughput is MB/s
(10^6 bytes) of ORIGINAL bytes. The last line is machine-readable:
``ratio_vs_dds_cli_random=<x> ratio_vs_dds_cli_fastq=<y>`` (our encrypt MB/s / dds-cli's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


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
    from keys.c4gh import keyfiles

    sk = keyfiles.load_private_key((d / "bench.sec").read_bytes(), "bench")
    return sk, keyfiles.load_public_key((d / "bench.pub").read_bytes())


def worker_ours_enc(src: str, dst: str, d: str) -> dict:
    sys.path.insert(0, str(REPO))
    from keys import c4gh

    _, pk = _c4gh_keys(Path(d))
    t = time.perf_counter()
    res = c4gh.encrypt_file(src, dst, [pk])
    dt = time.perf_counter() - t
    meta = {"sha256": res.sha256, "compressed": res.compressed}
    Path(dst + ".json").write_text(json.dumps(meta))
    return {"seconds": dt, "stored": res.stored_size, "compressed": res.compressed}


def worker_ours_dec(src: str, dst: str, d: str) -> dict:
    sys.path.insert(0, str(REPO))
    from keys import c4gh

    sk, _ = _c4gh_keys(Path(d))
    meta = json.loads(Path(src + ".json").read_text())
    t = time.perf_counter()
    c4gh.decrypt_file(src, dst, sk, expected_sha256=meta["sha256"], compressed=meta["compressed"])
    return {"seconds": time.perf_counter() - t, "verified_sha256": True}


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


WORKERS = {
    "ours-enc": worker_ours_enc,
    "ours-dec": worker_ours_dec,
    "dds-enc": worker_dds_enc,
    "dds-dec": worker_dds_dec,
}


# --------------------------------------------------------------------------- orchestration


TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def run_child(argv: list[str], stdin=None, stdout=None, env=None) -> tuple[float, int, str]:
    """Run a child; return (wall seconds, peak RSS bytes of that child, its stdout text).

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
    rss = ru.ru_maxrss * 1024
    if rss_file:
        try:
            rss = int(Path(rss_file).read_text().split()[-1]) * 1024
        finally:
            os.unlink(rss_file)
    return wall, rss, out.decode()


def settle() -> None:
    """Flush dirty pages left by the previous step (untimed), so no tool pays for another's
    writeback; each tool still pays for the writeback its own output triggers."""
    os.sync()
    time.sleep(1)


def run_worker(name: str, src: Path, dst: Path, d: Path) -> dict:
    settle()
    argv = [sys.executable, __file__, "--worker", name, str(src), str(dst), str(d)]
    _, rss, out = run_child(argv)
    res = json.loads(out.strip().splitlines()[-1])
    res["rss"] = rss
    return res


def run_c4gh_cli(mode: str, src: Path, dst: Path, d: Path) -> dict:
    cli = Path(sys.executable).parent / "crypt4gh"
    if not cli.exists():
        cli = Path(shutil.which("crypt4gh") or "crypt4gh")
    settle()
    env = dict(os.environ, C4GH_PASSPHRASE="bench")
    args = (
        [str(cli), "encrypt", "--recipient_pk", str(d / "bench.pub")]
        if mode == "enc"
        else [str(cli), "decrypt", "--sk", str(d / "bench.sec")]
    )
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        wall, rss, _ = run_child(args, stdin=fin, stdout=fout, env=env)
    return {"seconds": wall, "rss": rss, "stored": os.path.getsize(dst) if mode == "enc" else None}


def warm_memory(gib: float) -> None:
    """Touch RAM once so first-touch page faults of a fresh VM do not skew the first tool."""
    if gib <= 0:
        return
    block = b"\x01" * int(gib * (1 << 30))
    del block


def fmt_mb(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-random", type=int, default=1024, help="MiB of random data")
    ap.add_argument("--size-fastq", type=int, default=512, help="MiB of synthetic FASTQ")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--warm-gib", type=float, default=4.0, help="RAM to pre-touch (0 = off)")
    ap.add_argument("--skip-c4gh-cli", action="store_true")
    ap.add_argument("--worker", nargs=4, metavar=("NAME", "SRC", "DST", "DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        name, src, dst, d = args.worker
        print(json.dumps(WORKERS[name](src, dst, d)))
        return

    sys.path.insert(0, str(REPO))
    from keys import c4gh

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
        warm_memory(args.warm_gib)
        print(f"# cpus={os.cpu_count()} python={sys.version.split()[0]} dir={base}")
        print(f"{'data':7s} {'tool':9s} {'op':4s} {'MB/s':>8s} {'peak RSS MB':>12s} "
              f"{'stored MB':>10s}  notes")
        results: dict = {}

        def report(data, tool, op, size, res, note=""):
            speed = fmt_mb(size, res["seconds"])
            stored = f"{res['stored'] / 1e6:10.1f}" if res.get("stored") else f"{'':10s}"
            print(f"{data:7s} {tool:9s} {op:4s} {speed:8.1f} {res['rss'] / 1e6:12.1f} "
                  f"{stored}  {note}", flush=True)
            results[(data, tool, op)] = (speed, res)

        for data, (src, size, _maker) in inputs.items():
            enc, dec = base / f"{data}.enc", base / f"{data}.dec"
            # ours
            r = run_worker("ours-enc", src, enc, base)
            report(data, "ours", "enc", size, r, f"compressed={r['compressed']}")
            r = run_worker("ours-dec", enc, dec, base)
            report(data, "ours", "dec", size, r, "SHA-256 verified")
            assert _same(src, dec), "ours: round trip mismatch"
            for p in (enc, dec):
                p.unlink()
            # dds-cli
            r = run_worker("dds-enc", src, enc, base)
            report(data, "dds-cli", "enc", size, r, f"compressed={r['compressed']}")
            r = run_worker("dds-dec", enc, dec, base)
            report(data, "dds-cli", "dec", size, r, "no checksum check (its default)")
            assert _same(src, dec), "dds-cli: round trip mismatch"
            for p in (enc, dec):
                p.unlink()
            # reference crypt4gh CLI
            if not args.skip_c4gh_cli:
                r = run_c4gh_cli("enc", src, enc, base)
                report(data, "c4gh-cli", "enc", size, r, "no compression")
                r = run_c4gh_cli("dec", enc, dec, base)
                report(data, "c4gh-cli", "dec", size, r)
                assert _same(src, dec), "crypt4gh: round trip mismatch"
                for p in (enc, dec):
                    p.unlink()

        def ratio(data, op, other):
            return results[(data, "ours", op)][0] / results[(data, other, op)][0]

        print("# speed-up of ours:")
        for data in inputs:
            line = [f"{data}: enc x{ratio(data, 'enc', 'dds-cli'):.2f} vs dds-cli",
                    f"dec x{ratio(data, 'dec', 'dds-cli'):.2f} vs dds-cli"]
            if not args.skip_c4gh_cli:
                line += [f"enc x{ratio(data, 'enc', 'c4gh-cli'):.2f} vs crypt4gh",
                         f"dec x{ratio(data, 'dec', 'c4gh-cli'):.2f} vs crypt4gh"]
            print("#   " + ", ".join(line))
        ours_st = results[("fastq", "ours", "enc")][1]["stored"]
        dds_st = results[("fastq", "dds-cli", "enc")][1]["stored"]
        print(f"# fastq stored size: ours {ours_st} B (+124 B header in DB), dds-cli {dds_st} B "
              f"-> ours/dds = {ours_st / dds_st:.4f}")
        print(f"ratio_vs_dds_cli_random={ratio('random', 'enc', 'dds-cli'):.2f} "
              f"ratio_vs_dds_cli_fastq={ratio('fastq', 'enc', 'dds-cli'):.2f}")
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
