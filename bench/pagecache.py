"""What a new file costs this VM, by how long ago memory was freed and how it is written.

    python3 bench/pagecache.py DIR SIZE_MIB SCENARIO...

A SCENARIO is ``t<threads>:k<KiB per pwrite>:d<seconds>[:o1][:s]``: remove the previous
output, wait ``d`` seconds, then write a new file of SIZE_MIB in a fresh child process
(``t`` threads pwriting ``k``-KiB pieces of one buffer; ``o1`` = with O_DIRECT). ``s``
also times an ``os.sync()`` after it. Prints wall and CPU-s of the child.

Why: the 2-core VM (Firecracker, virtio-balloon with free page reporting, order 9) gives
guest memory that has been free for a few seconds back to the host, and the next touch
of such a page faults in the host. See bench/README.md ("Figures of 2026-12-02 (engine)").
"""

from __future__ import annotations

import json
import mmap
import os
import resource
import subprocess
import sys
import threading
import time

KiB = 1 << 10
MiB = 1 << 20


def child(path: str, size: int, threads: int, piece: int, direct: bool) -> None:
    buf = mmap.mmap(-1, piece)  # page-aligned, as O_DIRECT wants
    buf[:] = os.urandom(piece)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o600)
    n = -(-size // piece)
    lock = threading.Lock()
    nxt = [0]

    def run() -> None:
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            os.pwrite(fd, memoryview(buf)[: min(piece, size - i * piece)], i * piece)

    t = time.perf_counter()
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    os.close(fd)
    dt = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": dt, "cpu": ru.ru_utime + ru.ru_stime, "sys": ru.ru_stime}))


def main() -> None:
    if sys.argv[1] == "--child":
        path, size, threads, piece, direct = sys.argv[2:7]
        child(path, int(size), int(threads), int(piece), direct == "1")
        return
    d, size = sys.argv[1], int(sys.argv[2]) * MiB
    out = os.path.join(d, "pagecache-probe.bin")
    for spec in sys.argv[3:]:
        kv = {x[0]: x[1:] for x in spec.split(":")}
        threads, piece = int(kv.get("t", "1")), int(kv.get("k", "1024")) * KiB
        if os.path.exists(out):
            os.unlink(out)
        time.sleep(float(kv.get("d", "6")))
        t0 = time.perf_counter()
        r = json.loads(subprocess.run(
            [sys.executable, __file__, "--child", out, str(size), str(threads), str(piece),
             "1" if kv.get("o") == "1" else "0"],
            capture_output=True, text=True, check=True).stdout)
        synced = ""
        if "s" in kv:
            os.sync()
            synced = f" with sync {time.perf_counter() - t0:.2f} s"
        print(f"{spec:16s} wall {r['wall']:5.2f} s cpu {r['cpu']:5.2f} s (sys {r['sys']:.2f})"
              f"{synced} load {os.getloadavg()[0]:.2f}", flush=True)
    if os.path.exists(out):
        os.unlink(out)


if __name__ == "__main__":
    main()
