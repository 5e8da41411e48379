"""zstd settings on FASTQ: output size and CPU-s of the compressor alone.

    .venv/bin/python bench/zstd_fastq.py gen OUT.fastq MIB          # the "genome" FASTQ
    .venv/bin/python bench/zstd_fastq.py FILE THREADS SETTING...    # compress FILE

A SETTING is a level (``3``), ``(4, True)`` (a level with the frame checksum, as dds-cli
2.15.1 writes), or a dict of ``zstandard.ZstdCompressionParameters`` arguments
(``"{'strategy': 1, 'window_log': 20, 'hash_log': 18, 'min_match': 7}"``), or ``ours``
(``c4gh.compression.ZSTD_PARAMS``). THREADS is zstd's worker threads (0 = one thread;
the client uses 2). The input is fed in 1 MiB pieces to a chunker of 64 KiB outputs, as
the engine does. bench/crypto.py's own FASTQ is ``make_fastq`` there (random bases, a
16-symbol quality table): nothing repeats but the headers. ``gen`` writes reads that do
repeat: from a 50 Mbp random genome, both strands, 0.5 % substitutions, 10 % of reads
trimmed to 35-149 bp, HiSeq-like Phred 2-41 qualities (a random walk that falls towards
the 3' end), Illumina 1.8 headers with increasing coordinates.
"""

from __future__ import annotations

import ast
import os
import random
import resource
import sys
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
MiB = 1 << 20


def make_genome_fastq(path: str, size: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    genome = os.urandom(50_000_000).translate(bytes(b"ACGT"[i % 4] for i in range(256)))
    comp = bytes.maketrans(b"ACGT", b"TGCA")
    written, n, x = 0, 0, 1000
    with open(path, "wb") as f:
        while written < size:
            recs = []
            for _ in range(2000):
                length = 150 if rnd.random() > 0.1 else rnd.randrange(35, 150)
                p = rnd.randrange(0, len(genome) - length)
                s = genome[p : p + length]
                if rnd.random() < 0.5:
                    s = s.translate(comp)[::-1]
                seq = bytearray(s)
                for _e in range(int(length * 0.005 + rnd.random())):
                    seq[rnd.randrange(length)] = b"ACGTN"[rnd.randrange(5)]
                q = bytearray(length)
                v = rnd.randrange(30, 42)
                for i in range(length):
                    v += rnd.choice((-2, -1, 0, 0, 0, 1, 1))
                    v -= 1 if i > 100 and rnd.random() < 0.1 else 0
                    v = max(2, min(41, v))
                    q[i] = 33 + v
                n += 1
                x += rnd.randrange(1, 60)
                if x > 30000:
                    x = 1000
                recs.append(b"@HWI-ST1234:8:1101:%d:%d#0/1\n%s\n+\n%s\n"
                            % (n % 20000, x, bytes(seq), bytes(q)))
            block = b"".join(recs)[: size - written]
            f.write(block)
            written += len(block)


def compressor(setting: object, threads: int) -> zstandard.ZstdCompressor:
    from c4gh import compression

    if setting == "ours":
        return compression.make_compressor(threads)
    checksum = False
    if isinstance(setting, tuple):
        setting, checksum = setting
    if isinstance(setting, int):
        p = zstandard.ZstdCompressionParameters.from_level(setting, threads=threads,
                                                           write_checksum=checksum)
    else:
        assert isinstance(setting, dict)
        p = zstandard.ZstdCompressionParameters(threads=threads, **setting)
    return zstandard.ZstdCompressor(compression_params=p)


def main() -> None:
    if sys.argv[1] == "gen":
        make_genome_fastq(sys.argv[2], int(sys.argv[3]) * MiB)
        return
    data = Path(sys.argv[1]).read_bytes()
    threads = int(sys.argv[2])
    for spec in sys.argv[3:]:
        setting = spec if spec == "ours" else ast.literal_eval(spec)
        ch = compressor(setting, threads).chunker(size=-1, chunk_size=65536)
        r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        out = 0
        mv = memoryview(data)
        for i in range(0, len(mv), MiB):
            out += sum(len(seg) for seg in ch.compress(mv[i : i + MiB]))
        out += sum(len(seg) for seg in ch.finish())
        wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        print(f"{spec:60s} threads {threads} size {out} = {out / len(data):.4f} "
              f"wall {wall:.2f} s cpu {cpu:.2f} s", flush=True)


if __name__ == "__main__":
    main()
