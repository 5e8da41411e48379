"""Deciding whether to zstd-compress a file, and the zstd settings we use.

Why a decision at all: compressing data that is already compressed (gzip/BGZF FASTQ, BAM,
CRAM, images, ...) or is essentially random wastes CPU (zstd runs at ~200-300 MB/s on such
input versus >1 GB/s for hashing and encryption) and gains nothing. We therefore look at the
first bytes: a known compressed-format magic means "do not compress"; otherwise we trial-
compress a small sample with a very fast setting and only compress if it shrinks noticeably.
The decision is returned as the ``compressed`` flag that must be stored with the file.
"""

from __future__ import annotations

import zstandard

#: Magic numbers of formats that are already compressed (prefix match at offset 0).
COMPRESSED_MAGICS: dict[bytes, str] = {
    b"\x1f\x8b": "gzip/BGZF (incl. BAM, .fastq.gz, .vcf.gz)",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip (empty)",
    b"CRAM": "CRAM",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x02\x21\x4c\x18": "lz4 legacy",
    b"LZIP": "lzip",
    b"\x5d\x00\x00": "lzma",
    b"Rar!\x1a\x07": "rar",
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"crypt4gh": "crypt4gh (already encrypted)",
    b"ORC": "orc",
    b"PAR1": "parquet",
    b"\x89HDF\r\n\x1a\n": "hdf5",
}

#: Bytes of the file start that are inspected / trial-compressed.
SAMPLE_SIZE = 256 * 1024
#: Compress only if the trial sample shrinks below this fraction.
MIN_GAIN_RATIO = 0.95

#: zstd level used when a caller asks for one (``zstd_level=``); the default is ZSTD_PARAMS.
ZSTD_LEVEL = 3

#: The default zstd settings: the "fast" strategy (one hash table, no chains) with a 1 MiB
#: window, a 2^18-entry table and matches of at least 7 bytes. FASTQ is mostly literals
#: (bases, qualities) that only the entropy coder shrinks; short and far matches are noise
#: there, and a bigger table or window costs cache misses. Measured 2026-12-02, 2 threads
#: (zstd's multithreaded mode, as the client runs it), CPU-s of the compressor alone:
#: bench/crypto.py's 512 MiB FASTQ 2.08-2.12 (level 3: 2.53-2.56), 0.2798 of the input
#: (level 3: 0.2805; dds-cli 2.15.1's level 4 single-threaded with checksum: 0.2807);
#: a 256 MiB FASTQ of reads from a 50 Mbp genome with HiSeq-like qualities
#: (bench/README.md) 1.56-1.59 CPU-s (level 3: 1.74-1.75), 0.3594 (level 3: 0.3645;
#: dds-cli: 0.3568). The output is an ordinary zstd frame (window 1 MiB).
ZSTD_PARAMS: dict[str, int] = {
    "strategy": zstandard.STRATEGY_FAST,
    "window_log": 20,
    "hash_log": 18,
    "chain_log": 16,
    "search_log": 1,
    "min_match": 7,
    "target_length": 0,
}


def detect_compressed_format(head: bytes) -> str | None:
    """Name of the compressed format whose magic starts ``head``, else ``None``."""
    for magic, name in COMPRESSED_MAGICS.items():
        if head.startswith(magic):
            return name
    return None


def should_compress(head: bytes) -> bool:
    """Decide from the first bytes of a file whether zstd compression is worthwhile.

    ``False`` for empty input, for known compressed formats (magic bytes), and for samples
    that a fast zstd pass cannot shrink by at least 5 % (random / encrypted data).
    """
    if not head:
        return False
    if detect_compressed_format(head) is not None:
        return False
    sample = head[:SAMPLE_SIZE]
    if len(sample) < 512:
        return False  # too small to be worth a zstd frame
    trial = zstandard.ZstdCompressor(level=1).compress(sample)
    return len(trial) < MIN_GAIN_RATIO * len(sample)


def make_compressor(threads: int = 0, level: int | None = None) -> zstandard.ZstdCompressor:
    """The zstd compressor used for uploads (``threads`` > 0 enables zstd's own workers):
    ZSTD_PARAMS, or zstd's own settings of ``level`` when one is given."""
    if level is None:
        params = zstandard.ZstdCompressionParameters(threads=threads, **ZSTD_PARAMS)
    else:
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads)
    return zstandard.ZstdCompressor(compression_params=params)


def make_decompressor() -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor()
