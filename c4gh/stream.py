"""Streaming Crypt4GH encryption and decryption (hash + zstd + ChaCha20-Poly1305 in one pass).

Design notes (why it looks like this):

* **One pass.** The original bytes are read once; SHA-256 is computed on them, they are
  zstd-compressed when worthwhile (see :mod:`.compression`) and the result is cut into
  65 536-byte segments, each sealed as ``nonce(12) || ChaCha20-Poly1305(segment) || MAC(16)``.
* **Two cores.** ``hashlib`` (large buffers) and ``zstandard`` release the GIL, so the
  stages run in parallel: a reader thread fills recycled buffers, a hashing thread runs
  SHA-256 (+ zstd) on them — SHA-256 is the slowest stage, so nothing else runs on its
  thread — and the consumer encrypts (+ whatever the caller does with the chunks, e.g. an
  HTTP PUT). When compressing, zstd's own worker threads are used as well. Decryption
  mirrors it: read + authenticate into recycled buffers, (decompress,) hash, write.
  ``cryptography``'s ChaCha20-Poly1305 ``encrypt_into`` and ``decrypt_into`` release the
  GIL too (cryptography 50, 2-core VM, 2026-12-01: during one 256 MiB call of either,
  another Python thread ran 1.4-4.0 million loop iterations; it could run none if the GIL
  were held), so no explicit hand-off is needed between the stages: the old
  ``time.sleep(0)`` every 4 segments is gone (with it, the encrypt pipeline used 1.3
  CPU-s per GiB; without, 1.15-1.2 at the same or better wall time).
* **Small inputs in-line.** Threads and MiB buffers cost more than encrypting a few KiB:
  :func:`encrypt_inline` does a small file in the caller's thread.
* **Bounded memory.** Stages talk through small bounded queues, so peak memory is a few
  tens of MB whatever the file size.
* **Integrity.** Segments are authenticated one by one, but they are independent: a
  dropped, duplicated or reordered segment still authenticates. The SHA-256 of the original
  bytes (stored next to the header) is what catches that, so decryptors always check it
  when it is known, and :func:`decrypt_file` only renames its temporary file into place
  after every check passed.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import io
import mmap
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Generic, NamedTuple, TypeVar, cast

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import compression
from .errors import (
    C4GHError,
    ChecksumMismatchError,
    DecompressionError,
    HeaderError,
    SegmentAuthError,
    SizeMismatchError,
    TruncatedError,
)
from .header import (
    MAC_SIZE,
    NONCE_SIZE,
    Bytes,
    encrypt_header,
    parse_header,
    split_packets,
)

SEGMENT_SIZE = 65536
#: What a pipeline stage hands on.
T = TypeVar("T")
CIPHER_DIFF = NONCE_SIZE + MAC_SIZE  # 28
CIPHER_SEGMENT_SIZE = SEGMENT_SIZE + CIPHER_DIFF  # 65564

#: Plaintext read granularity (a multiple of SEGMENT_SIZE).
READ_SIZE = 16 * SEGMENT_SIZE  # 1 MiB
#: Default number of segments per yielded ciphertext chunk (~8.4 MB, above S3's 5 MiB minimum
#: multipart part size so a chunk can be PUT as one part).
DEFAULT_SEGMENTS_PER_CHUNK = 128
QUEUE_DEPTH = 8
#: Recycled plaintext read buffers (READ_SIZE each) of the encryptor.
POOL_BLOCKS = QUEUE_DEPTH + 3
#: Segments per plaintext block of the decryptor (1 MiB).
DEC_BLOCK_SEGMENTS = 16
#: :func:`decrypt_file` writes its output with ``O_DIRECT`` from this many stored bytes on
#: (see :class:`_DirectWriter`).
DIRECT_MIN = 8 << 20
#: The direct writer's page-aligned staging buffers: size and number (16 MiB in all).
DIRECT_BLOCK = 4 << 20
DIRECT_BUFFERS = 4
#: Threads with an ``O_DIRECT`` write in flight (each waits for the disk).
DIRECT_IO_THREADS = 2
#: Largest ``pwrite`` through the page cache (see :meth:`_PositionalWriter._pwrite`).
PWRITE_PIECE = SEGMENT_SIZE
#: Alignment of ``O_DIRECT`` offsets and lengths (the largest logical block size in use).
DIRECT_ALIGN = 4096


def stored_size(plaintext_size: int) -> int:
    """Size of the data segments for ``plaintext_size`` bytes of (possibly compressed) data."""
    full, rem = divmod(plaintext_size, SEGMENT_SIZE)
    return full * CIPHER_SEGMENT_SIZE + (rem + CIPHER_DIFF if rem else 0)


def segment_count(stored: int) -> int:
    """Number of segments in ``stored`` bytes of segment data."""
    return -(-stored // CIPHER_SEGMENT_SIZE)


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Read exactly ``n`` bytes unless EOF (sources such as pipes return short reads)."""
    data = src.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _readinto_full(src: BinaryIO, buf: bytearray) -> int:
    """Fill ``buf`` from ``src`` (short only at EOF); falls back to read() if needed."""
    mv = memoryview(buf)
    got = 0
    readinto = getattr(src, "readinto", None)
    while got < len(buf):
        if readinto is not None:
            n = readinto(mv[got:])
        else:
            data = src.read(len(buf) - got)
            n = len(data) if data else 0
            mv[got : got + n] = data if data else b""
        if not n:
            break
        got += n
    return got


# --------------------------------------------------------------------------- threading helper

_END = object()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


#: A pipeline stage: ``produce(put, stopped)`` (see :func:`_threaded`).
Producer = Callable[[Callable[[T], bool], Callable[[], bool]], None]


def _threaded(produce: Producer[T], depth: int, name: str = "c4gh-pipeline"
              ) -> Iterator[T]:
    """Run ``produce(put, stopped)`` in a worker thread and iterate over what it puts.

    ``put`` returns False once the consumer has gone away (generator closed early), so the
    worker never blocks forever. Exceptions in the worker are re-raised in the consumer.
    """
    q: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            produce(put, stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(_Failure(exc))
        else:
            put(_END)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield cast(T, item)  # what ``produce`` put
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def _get_free(pool: queue.Queue[bytearray], stopped: Callable[[], bool]) -> bytearray | None:
    """A recycled buffer from ``pool`` (None once ``stopped``)."""
    while not stopped():
        try:
            return pool.get(timeout=0.1)
        except queue.Empty:
            continue
    return None


def _read_blocks(src: BinaryIO, pool: queue.Queue[bytearray]
                 ) -> Iterator[tuple[bytearray, int]]:
    """``(buffer, n)`` read from ``src`` into buffers of ``pool``, by a reader thread.

    Reading (a copy out of the page cache or a socket) stays off the thread that consumes
    the blocks; the consumer gives each buffer back to ``pool`` when it is done with it.
    The last block is the short one (or none when the size is a multiple of a block).
    """

    def produce(put: Callable[[tuple[bytearray, int]], bool],
                stopped: Callable[[], bool]) -> None:
        while True:
            buf = _get_free(pool, stopped)
            if buf is None:
                return
            n = _readinto_full(src, buf)
            if n and not put((buf, n)):
                return
            if n < len(buf):
                if not n:
                    pool.put(buf)
                return

    return _threaded(produce, QUEUE_DEPTH, name="c4gh-reader")


class _BackgroundWriter(Generic[T]):
    """Hand writes to a thread so disk I/O overlaps with the crypto and hashing."""

    def __init__(self, write: Callable[[T], object], depth: int = 2) -> None:
        self._write = write
        self._q: queue.Queue[T | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="c4gh-writer", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in write()/close()
                    self._error = exc

    def write(self, data: T) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(data)

    def __enter__(self) -> _BackgroundWriter[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._q.put(None)
        self._t.join()
        if exc_type is None and self._error is not None:
            raise self._error


# --------------------------------------------------------------------------- encryption


@dataclass(frozen=True)
class EncryptResult:
    """Outcome of an encryption.

    ``stored_size``: bytes of data segments (what goes to object storage; the header is
    kept separately); ``original_size`` / ``sha256``: of the original plaintext;
    ``compressed``: whether the segments contain a zstd stream.
    """

    header: bytes
    stored_size: int
    original_size: int
    compressed: bool
    sha256: str
    segments: int


class _Totals(NamedTuple):
    """The encryptor's last pipeline item: size and SHA-256 of the original."""

    size: int
    sha256: str


#: The encryptor's other pipeline items: plaintext segments, and the pool buffer they are
#: views of (None when they are not: zstd output, the first bytes) to give back after.
_Segments = tuple[bytearray | None, list[Bytes]]


class Encryptor:
    """Encrypt a readable binary source into Crypt4GH segments, as an iterator of chunks.

    ``header`` is available right after construction (and so is ``compressed``, decided from
    the first bytes), so a client can register the upload before streaming. Iterating yields
    bytes-like chunks (fresh ``bytearray`` objects, never reused) made of whole segments,
    ``segments_per_chunk`` per chunk except the last. After iteration, ``result`` holds the
    :class:`EncryptResult`. ``header + b"".join(chunks)`` is a standard Crypt4GH file.

    ``compress``: ``None`` = decide automatically, ``True``/``False`` to force.
    ``session_key`` + ``header``: resume an earlier encryption of the same source (a
    journal keeps them); otherwise a fresh session key and header are made.
    ``zstd_threads``: zstd worker threads when compressing (default: number of CPUs, max 4).
    ``zstd_level``: zstd's settings of that level instead of ``compression.ZSTD_PARAMS``.
    """

    def __init__(
        self,
        source: BinaryIO,
        recipients: list[bytes],
        *,
        compress: bool | None = None,
        writer_sk: bytes | None = None,
        segments_per_chunk: int = DEFAULT_SEGMENTS_PER_CHUNK,
        zstd_threads: int | None = None,
        zstd_level: int | None = None,
        session_key: bytes | None = None,
        header: bytes | None = None,
    ) -> None:
        if segments_per_chunk < 1:
            raise ValueError("segments_per_chunk must be >= 1")
        if (session_key is None) != (header is None):
            raise ValueError("session_key and header are given together (to resume)")
        if session_key is not None and len(session_key) != 32:
            raise ValueError("session_key must be 32 bytes")
        self._src = source
        # A resumed upload re-encrypts the missing parts under the session key and header
        # it started with, so the parts already stored still decrypt.
        self._session_key = session_key or os.urandom(32)
        self.header = header or encrypt_header(self._session_key, recipients, writer_sk)
        self._head = _read_full(source, compression.SAMPLE_SIZE)
        self.compressed = compression.should_compress(self._head) if compress is None else compress
        self._spc = segments_per_chunk
        self._zstd_threads = (
            min(os.cpu_count() or 1, 4) if zstd_threads is None else zstd_threads
        )
        self._zstd_level = zstd_level  # None: compression.ZSTD_PARAMS
        self._result: EncryptResult | None = None
        self._started = False

    @property
    def session_key(self) -> bytes:
        """The data key: secret; a resumable client keeps it in its 0600 journal only."""
        return self._session_key

    @property
    def result(self) -> EncryptResult:
        if self._result is None:
            raise RuntimeError("encryption has not finished: iterate over the Encryptor first")
        return self._result

    # -- producer: hash, (compress), cut into plaintext segments; reads come from a thread
    def _produce(self, put: Callable[[_Segments | _Totals], bool],
                 stopped: Callable[[], bool]) -> None:
        sha = hashlib.sha256()
        total = 0
        head = self._head
        sha.update(head)
        total += len(head)
        more = len(head) == compression.SAMPLE_SIZE  # a short head means EOF
        blocks: Iterator[tuple[bytearray, int]] = (_read_blocks(self._src, self._pool) if more
                                                   else iter(()))
        if self.compressed:
            chunker = compression.make_compressor(self._zstd_threads, self._zstd_level).chunker(
                size=-1, chunk_size=SEGMENT_SIZE
            )
            segs: list[Bytes] = list(chunker.compress(head)) if head else []
            for buf, n in blocks:
                if segs and not put((None, segs)):
                    return
                mv = memoryview(buf)[:n]
                sha.update(mv)
                total += n
                segs = list(chunker.compress(mv))  # zstd copies its input
                del mv
                self._pool.put(buf)
            segs += list(chunker.finish())  # type: ignore[no-untyped-call]  # unannotated in zstandard's stub
            if segs and not put((None, segs)):
                return
        else:
            # Plaintext blocks are recycled through a pool: fresh multi-MB allocations cost
            # page faults that, on VMs, are slower than the encryption itself.
            if head:
                mv = memoryview(head)
                first: list[Bytes] = [mv[i : i + SEGMENT_SIZE]
                                      for i in range(0, len(mv), SEGMENT_SIZE)]
                if not put((None, first)):
                    return
            for buf, n in blocks:
                mv = memoryview(buf)[:n]
                sha.update(mv)  # releases the GIL; the only work on this thread
                total += n
                block: list[Bytes] = [mv[i : i + SEGMENT_SIZE] for i in range(0, n, SEGMENT_SIZE)]
                if not put((buf, block)):
                    return
        put(_Totals(total, sha.hexdigest()))

    def __iter__(self) -> Iterator[bytearray]:
        """Fresh ``bytearray`` chunks (safe to keep); see :meth:`chunks` for the fast path."""
        for chunk, _ in self._chunks(None):
            yield chunk

    def chunks(self, *, reuse: bool = False) -> Iterator[bytearray | memoryview]:
        """Iterate over ciphertext chunks (whole segments).

        With ``reuse=True`` every chunk is a ``memoryview`` of one internal buffer that is
        only valid until the next chunk is requested: use it when each chunk is written or
        sent before asking for the next one (saves page-faulting a fresh buffer per chunk).
        """
        if reuse:
            for chunk, release in self.recycled(1):
                yield chunk
                release()
        else:
            yield from iter(self)

    def recycled(self, buffers: int) -> Iterator[tuple[memoryview, Callable[[], None]]]:
        """``(chunk, release)`` pairs: chunks are views of ``buffers`` recycled buffers.

        A chunk stays valid until its ``release()`` is called (e.g. after its HTTP PUT,
        possibly in another thread); the iteration waits for a released buffer when all
        ``buffers`` are out. Bounded memory with several parts in flight and no page
        faults of fresh part-sized allocations.
        """
        if buffers < 1:
            raise ValueError("buffers must be >= 1")
        free: queue.Queue[bytearray] = queue.Queue()
        cap = self._spc * CIPHER_SEGMENT_SIZE
        made = 0

        def take() -> bytearray:
            nonlocal made
            try:
                return free.get_nowait()
            except queue.Empty:
                if made < buffers:
                    made += 1
                    return bytearray(cap)
                return free.get()

        for buf, n in self._chunks(take):
            yield memoryview(buf)[:n], functools.partial(free.put, buf)

    def _chunks(self, take: Callable[[], bytearray] | None) -> Iterator[tuple[bytearray, int]]:
        """``(buffer, length)`` of each chunk: buffers from ``take`` (given back by the
        caller), or fresh ones of exactly the chunk's length when ``take`` is None."""
        if self._started:
            raise RuntimeError("an Encryptor can only be iterated once")
        self._started = True
        self._pool: queue.Queue[bytearray] = queue.Queue()
        for _ in range(POOL_BLOCKS):
            self._pool.put(bytearray(READ_SIZE))
        aead = ChaCha20Poly1305(self._session_key)
        cap = self._spc * CIPHER_SEGMENT_SIZE
        out = take() if take else bytearray(cap)
        omv = memoryview(out)
        pos = 0
        stored = 0
        nseg = 0
        summary: _Totals | None = None
        for item in _threaded(self._produce, QUEUE_DEPTH):
            if isinstance(item, _Totals):
                summary = item
                continue
            buf, segs = item
            for seg in segs:
                # One getrandom() per segment: it releases the GIL, which lets a waiting
                # hashing thread in without a 5 ms switch interval (3 interleaved runs,
                # 1 GiB to /dev/null: 1.43-1.76 GB/s vs 1.24-1.71 with one call per block).
                n = os.urandom(NONCE_SIZE)
                end = pos + NONCE_SIZE + len(seg) + MAC_SIZE
                omv[pos : pos + NONCE_SIZE] = n
                aead.encrypt_into(n, seg, None, omv[pos + NONCE_SIZE : end])
                pos = end
                nseg += 1
                if pos + CIPHER_SEGMENT_SIZE > cap:
                    stored += pos
                    if take is not None:
                        del omv
                        yield out, pos
                        out = take()
                        omv = memoryview(out)
                    else:
                        del omv
                        if pos != cap:
                            del out[pos:]
                        yield out, pos
                        out = bytearray(cap)
                        omv = memoryview(out)
                    pos = 0
            del segs, seg
            if buf is not None:
                self._pool.put(buf)
        if pos:
            stored += pos
            if take is not None:
                del omv
                yield out, pos
            else:
                del omv
                del out[pos:]
                yield out, pos
        assert summary is not None
        self._result = EncryptResult(
            header=self.header,
            stored_size=stored,
            original_size=summary.size,
            compressed=self.compressed,
            sha256=summary.sha256,
            segments=nseg,
        )


def encrypt_stream(
    source: BinaryIO, sink: BinaryIO, recipients: list[bytes], *, write_header: bool = True,
    **kwargs: Any,
) -> EncryptResult:
    """Encrypt ``source`` into the writable ``sink`` (header first unless ``write_header``)."""
    enc = Encryptor(source, recipients, **kwargs)
    if write_header:
        sink.write(enc.header)
    for chunk in enc.chunks(reuse=True):
        sink.write(chunk)
    return enc.result


def encrypt_file(
    src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], recipient_pks: list[bytes],
    **kwargs: Any,
) -> EncryptResult:
    """Encrypt a file into a standard ``.c4gh`` file (header + segments).

    Written to a temporary file next to ``dst_path`` and renamed at the end, so a crash never
    leaves a half-written destination.
    From ``DIRECT_MIN`` source bytes on it is written with ``O_DIRECT`` where the file
    system allows it (as :func:`decrypt_file`; a new 1 GiB file through the page cache
    costs the 2-core VM 1-3 CPU-s, see :class:`_DirectWriter`).
    """
    write_header = kwargs.pop("write_header", True)
    with open(src_path, "rb", buffering=0) as src:
        with _AtomicOutput(dst_path) as out:
            fd = out.file.fileno()
            w = _DirectWriter.open(fd, 0, DIRECT_IO_THREADS, _release) \
                if os.fstat(src.fileno()).st_size >= DIRECT_MIN else None
            if w is None:
                return encrypt_stream(src, out.file, recipient_pks, write_header=write_header,
                                      **kwargs)
            try:
                enc = Encryptor(src, recipient_pks, **kwargs)
                if write_header:
                    w.write([enc.header], None)
                for chunk, release in enc.recycled(3):
                    w.write([chunk], release)  # released once the stager has copied it
            except BaseException:
                w.close(raise_errors=False)
                raise
            w.close()
            return enc.result


def _release(release: Callable[[], None] | None) -> None:
    if release is not None:
        release()


def encrypt_inline(
    data: bytes | bytearray | memoryview,
    recipient_pks: list[bytes],
    *,
    compress: bool | None = None,
    zstd_level: int | None = None,
    writer_sk: bytes | None = None,
) -> tuple[bytearray, EncryptResult]:
    """Encrypt a small input in the caller's thread: ``(segments, result)``.

    For small files (one upload part): building an :class:`Encryptor` (a thread and
    ~11 MiB of buffers) costs far more than sealing a few KiB. Same format and
    compression decision as the Encryptor (zstd single-threaded here).
    """
    mv = memoryview(data)
    session_key = os.urandom(32)
    header = encrypt_header(session_key, recipient_pks, writer_sk)
    sha = hashlib.sha256(mv).hexdigest()
    compressed = compression.should_compress(bytes(mv[: compression.SAMPLE_SIZE])) \
        if compress is None else compress
    plain = memoryview(compression.make_compressor(0, zstd_level).compress(mv)) \
        if compressed else mv
    out = bytearray(stored_size(len(plain)))
    nseg = _seal_all(ChaCha20Poly1305(session_key), plain, memoryview(out))
    return out, EncryptResult(header=header, stored_size=len(out), original_size=len(mv),
                              compressed=compressed, sha256=sha, segments=nseg)


def _seal_all(aead: ChaCha20Poly1305, plain: memoryview, out: memoryview) -> int:
    nseg = segment_count(stored_size(len(plain)))
    nonces = os.urandom(NONCE_SIZE * nseg)
    pos = 0
    for i in range(nseg):
        seg = plain[i * SEGMENT_SIZE : (i + 1) * SEGMENT_SIZE]
        n = nonces[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]
        out[pos : pos + NONCE_SIZE] = n
        end = pos + NONCE_SIZE + len(seg) + MAC_SIZE
        aead.encrypt_into(n, seg, None, out[pos + NONCE_SIZE : end])
        pos = end
    return nseg


def encrypt_bytes(data: bytes, recipient_pks: list[bytes], **kwargs: Any
                  ) -> tuple[bytes, EncryptResult]:
    """In-memory convenience: returns (whole .c4gh file bytes, result)."""
    enc = Encryptor(io.BytesIO(data), recipient_pks, **kwargs)
    body = b"".join(enc)
    return enc.header + body, enc.result


# --------------------------------------------------------------------------- decryption


class _EditList:
    """Applies a Crypt4GH edit list (alternating skip / keep lengths) to a byte stream."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths = list(lengths)
        self.i = 0
        self.left = self.lengths[0] if self.lengths else 0

    def apply(self, data: Bytes) -> bytes:
        out: list[Bytes] = []
        mv = memoryview(data)
        pos = 0
        while pos < len(mv):
            if self.i >= len(self.lengths):
                # an odd count leaves an open-ended final 'keep'
                if len(self.lengths) % 2 == 1:
                    out.append(mv[pos:])
                break
            take = min(self.left, len(mv) - pos)
            if self.i % 2 == 1:
                out.append(mv[pos : pos + take])
            pos += take
            self.left -= take
            if self.left == 0:
                self.i += 1
                if self.i < len(self.lengths):
                    self.left = self.lengths[self.i]
        return b"".join(out)


class _SegmentOpener:
    """Ciphertext bytes of any chunking -> authenticated plaintext segments."""

    def __init__(self, session_keys: list[bytes], expected_stored_size: int | None) -> None:
        self.aeads = [ChaCha20Poly1305(k) for k in session_keys]
        self.buf = bytearray()
        self.index = 0
        self.seen = 0
        self.expected = expected_stored_size

    def _open(self, seg: Bytes, last: bool = False) -> bytes:
        if len(seg) <= CIPHER_DIFF:
            raise TruncatedError(
                f"truncated data: final segment {self.index} has only {len(seg)} bytes "
                f"(a segment needs more than {CIPHER_DIFF})"
            )
        nonce = bytes(seg[:NONCE_SIZE])
        body = seg[NONCE_SIZE:]
        for j, aead in enumerate(self.aeads):
            try:
                plain = aead.decrypt(nonce, body, None)
            except InvalidTag:
                continue
            if j:  # keep the working key first
                self.aeads.insert(0, self.aeads.pop(j))
            self.index += 1
            return plain
        if (
            last
            and self.expected is not None
            and self.seen < self.expected
            and len(seg) < CIPHER_SEGMENT_SIZE
        ):
            raise TruncatedError(
                f"truncated data: got {self.seen} of {self.expected} stored bytes; "
                f"last segment {self.index} is incomplete"
            )
        raise SegmentAuthError(self.index)

    def _open_into(self, seg: Bytes, out: memoryview, last: bool = False) -> int:
        """Authenticate ``seg`` and write its plaintext into ``out``; plaintext length."""
        if len(seg) <= CIPHER_DIFF:
            self._open(seg, last)  # raises the same errors as the copying path
        nonce = bytes(seg[:NONCE_SIZE])
        body = seg[NONCE_SIZE:]
        n = len(body) - MAC_SIZE
        for j, aead in enumerate(self.aeads):
            try:
                aead.decrypt_into(nonce, body, None, out[:n])
            except InvalidTag:
                continue
            if j:
                self.aeads.insert(0, self.aeads.pop(j))
            self.index += 1
            return n
        self._open(seg, last)  # raises TruncatedError or SegmentAuthError
        raise AssertionError("unreachable")

    def feed_into(self, data: Bytes, emit: Callable[[memoryview, bool], None]) -> None:
        """Like :meth:`feed`, but hands each whole ciphertext segment to ``emit``."""
        if not data:
            return
        self._count(len(data))
        mv = memoryview(data)
        if self.buf:
            need = CIPHER_SEGMENT_SIZE - len(self.buf)
            self.buf += mv[:need]
            mv = mv[need:]
            if len(self.buf) < CIPHER_SEGMENT_SIZE:
                return
            emit(memoryview(self.buf), False)
            self.buf = bytearray()
        n = len(mv) // CIPHER_SEGMENT_SIZE
        for i in range(n):
            emit(mv[i * CIPHER_SEGMENT_SIZE : (i + 1) * CIPHER_SEGMENT_SIZE], False)
        if len(mv) > n * CIPHER_SEGMENT_SIZE:
            self.buf = bytearray(mv[n * CIPHER_SEGMENT_SIZE :])

    def finish_into(self, emit: Callable[[memoryview, bool], None]) -> None:
        if self.buf:
            buf, self.buf = self.buf, bytearray()
            emit(memoryview(buf), True)
        self.finish()

    def _count(self, n: int) -> None:
        self.seen += n
        if self.expected is not None and self.seen > self.expected:
            raise SizeMismatchError(
                f"more segment data than the stored size ({self.seen} > {self.expected} bytes)"
            )

    def feed(self, data: Bytes) -> list[bytes]:
        if not data:
            return []
        self._count(len(data))
        out: list[bytes] = []
        mv = memoryview(data)
        if self.buf:
            need = CIPHER_SEGMENT_SIZE - len(self.buf)
            self.buf += mv[:need]
            mv = mv[need:]
            if len(self.buf) < CIPHER_SEGMENT_SIZE:
                return out
            out.append(self._open(self.buf))
            self.buf = bytearray()
        n = len(mv) // CIPHER_SEGMENT_SIZE
        for i in range(n):
            out.append(self._open(mv[i * CIPHER_SEGMENT_SIZE : (i + 1) * CIPHER_SEGMENT_SIZE]))
        if len(mv) > n * CIPHER_SEGMENT_SIZE:
            self.buf = bytearray(mv[n * CIPHER_SEGMENT_SIZE :])
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self.buf:
            out.append(self._open(self.buf, last=True))
            self.buf = bytearray()
        if self.expected is not None and self.seen != self.expected:
            have, want = segment_count(self.seen), segment_count(self.expected)
            raise TruncatedError(
                f"truncated data: got {self.seen} of {self.expected} stored bytes "
                f"({have} of {want} segments)"
            )
        return out


class _PlainSink:
    """Authenticated plaintext -> (edit list) -> (zstd) -> SHA-256 / size accounting."""

    PIECE = SEGMENT_SIZE  # bounded zstd input per call: bounds decompression output per call

    def __init__(
        self,
        compressed: bool,
        expected_sha256: str | None,
        expected_size: int | None,
        edit_list: list[int] | None,
    ) -> None:
        self.dobj = compression.make_decompressor().decompressobj() if compressed else None
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.expected_size = expected_size
        self.edits = _EditList(edit_list) if edit_list is not None else None
        self.sha = hashlib.sha256()
        self.hashing = True  # decrypt_file hashes in its writer thread instead
        self.size = 0

    def _account(self, data: Bytes) -> None:
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise SizeMismatchError(
                f"decrypted data is larger than the expected {self.expected_size} bytes"
            )
        if self.hashing:
            self.sha.update(data)

    def process(self, plain: Bytes) -> list[Bytes]:
        if self.edits is not None:
            plain = self.edits.apply(plain)
        if self.dobj is None:
            self._account(plain)
            return [plain]
        out: list[Bytes] = []
        mv = memoryview(plain)
        for i in range(0, len(mv), self.PIECE):
            if self.dobj.eof:
                raise DecompressionError("unexpected data after the end of the zstd stream")
            try:
                d = self.dobj.decompress(mv[i : i + self.PIECE])
            except zstandard.ZstdError as exc:
                raise DecompressionError(f"invalid zstd data: {exc}") from exc
            if d:
                self._account(d)
                out.append(d)
        return out

    def finish(self) -> None:
        if self.dobj is not None and self.size and not self.dobj.eof:
            raise TruncatedError("zstd stream is incomplete (data truncated or segments missing)")
        if self.dobj is not None and self.dobj.eof and self.dobj.unused_data:
            raise DecompressionError("unexpected data after the end of the zstd stream")
        if self.expected_size is not None and self.size != self.expected_size:
            raise SizeMismatchError(
                f"decrypted size {self.size} differs from the expected {self.expected_size} bytes"
            )
        actual = self.sha.hexdigest()
        if self.expected_sha256 is not None and actual != self.expected_sha256:
            raise ChecksumMismatchError(self.expected_sha256, actual)


class Decryptor:
    """Incremental Crypt4GH decryptor for ciphertext arriving in chunks of arbitrary size.

    Give it either ``session_keys`` (already decrypted), or ``header`` + ``reader_sk``, or
    only ``reader_sk`` when the stream itself starts with the header (a whole .c4gh file).

    ``feed(chunk)`` returns a list of plaintext pieces (already decompressed when
    ``compressed``); ``finish()`` returns the last ones and then verifies: trailing partial
    segment, stored size (``expected_stored_size``), zstd end of stream, original size
    (``expected_size``) and SHA-256 (``expected_sha256``). ``sha256``/``size`` are available
    after ``finish``. Everything handed out is authenticated per segment, but only
    ``finish()`` proves the whole file is complete and in order: consumers writing to a
    final destination must discard the output if ``finish`` raises.
    """

    def __init__(
        self,
        session_keys: list[bytes] | bytes | None = None,
        *,
        header: bytes | None = None,
        reader_sk: bytes | None = None,
        compressed: bool = False,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        expected_stored_size: int | None = None,
        edit_list: list[int] | None = None,
    ) -> None:
        self._reader_sk = reader_sk
        self._stored = expected_stored_size
        self._sink = _PlainSink(compressed, expected_sha256, expected_size, None)
        self._opener: _SegmentOpener | None = None
        self._pending = bytearray()  # header bytes when the stream starts with it
        self.sha256: str | None = None
        self.size: int | None = None
        self._edit_list = edit_list
        if session_keys is not None:
            keys = [session_keys] if isinstance(session_keys, (bytes, bytearray)) else session_keys
            self._start([bytes(k) for k in keys], edit_list)
        elif header is not None:
            if reader_sk is None:
                raise ValueError("reader_sk is required to decrypt the header")
            info = parse_header(header, reader_sk)
            self._start(info.session_keys, edit_list if edit_list is not None else info.edit_list)
        elif reader_sk is None:
            raise ValueError("give session_keys, header + reader_sk, or reader_sk")

    def _start(self, keys: list[bytes], edit_list: list[int] | None) -> _SegmentOpener:
        self._opener = _SegmentOpener(keys, self._stored)
        if edit_list is not None:
            self._sink.edits = _EditList(edit_list)
        return self._opener

    def _after_header(self, data: Bytes) -> tuple[_SegmentOpener, Bytes] | None:
        """The segment opener and the segment bytes of ``data``; None while a stream that
        starts with its header has not brought all of it yet."""
        if self._opener is not None:
            return self._opener, data
        self._pending += data
        try:
            _, hlen = split_packets(self._pending)
        except HeaderError as exc:
            if "truncated" not in str(exc) and "too short" not in str(exc):
                raise
            if len(self._pending) > 1 << 24:
                raise TruncatedError("no complete Crypt4GH header in the first 16 MiB") from None
            return None
        assert self._reader_sk is not None  # __init__: no keys and no header means a reader key
        info = parse_header(bytes(self._pending[:hlen]), self._reader_sk)
        opener = self._start(
            info.session_keys, self._edit_list if self._edit_list is not None else info.edit_list
        )
        rest = bytes(self._pending[hlen:])
        self._pending = bytearray()
        return opener, rest

    def open_segments(self, data: Bytes) -> list[bytes]:
        """Stage 1 only: authenticated plaintext segments (no decompression / hashing)."""
        started = self._after_header(data)
        return started[0].feed(started[1]) if started else []

    def _finish_segments(self) -> list[bytes]:
        if self._opener is None:
            raise TruncatedError("stream ended inside the Crypt4GH header")
        return self._opener.finish()

    def _sink_all(self, segs: list[bytes]) -> list[Bytes]:
        out: list[Bytes] = []
        for s in segs:
            out.extend(self._sink.process(s))
        return out

    def feed(self, data: Bytes) -> list[Bytes]:
        """Decrypt whatever complete segments ``data`` completes; return plaintext pieces."""
        return self._sink_all(self.open_segments(data))

    def finish(self) -> list[Bytes]:
        """Flush the last segment and run every end-of-stream check (raises on failure)."""
        out = self._sink_all(self._finish_segments())
        self._sink.finish()
        self.sha256 = self._sink.sha.hexdigest()
        self.size = self._sink.size
        return out

    def stream(self, chunks: Iterable[Bytes], *, threaded: bool = True) -> Iterator[Bytes]:
        """Yield plaintext for an iterable of ciphertext chunks; verify at the end.

        With ``threaded`` the iteration of ``chunks`` (network / disk I/O) and segment
        decryption run in a worker thread while decompression and hashing run in the
        caller's thread, using both cores. Raises at the end if any check fails.
        """
        if not threaded:
            for c in chunks:
                yield from self.feed(c)
            yield from self.finish()
            return

        def produce(put: Callable[[list[bytes]], bool], stopped: Callable[[], bool]) -> None:
            for c in chunks:
                segs = self.open_segments(c)
                if segs and not put(segs):
                    return
            segs = self._finish_segments()
            if segs:
                put(segs)

        for segs in _threaded(produce, QUEUE_DEPTH):
            yield from self._sink_all(segs)
        self._sink.finish()
        self.sha256 = self._sink.sha.hexdigest()
        self.size = self._sink.size

    def run(
        self,
        chunks: Iterable[Bytes],
        write: Callable[[Bytes], object] | None = None,
        *,
        sha: hashlib._Hash | None = None,
        threaded: bool = True,
        fd: int | None = None,
        offset: int = 0,
        writers: int = 1,
        direct: bool = False,
    ) -> None:
        """Decrypt ``chunks`` into ``write`` or the file ``fd``, hashing once; raises at the
        end if any check fails.

        The fast path (:func:`decrypt_file`, ``dds data get``): segments are authenticated
        with ``decrypt_into`` into recycled 1 MiB blocks, so ``write`` receives views that
        are valid only during the call (write or copy them, never keep them); it is called
        in order, from one thread. With ``fd`` instead, the plaintext goes to that file with
        ``os.pwrite`` from ``offset`` on, by ``writers`` threads, so the hashing thread
        never waits for the disk. One writer by default: a new 1 GiB file through the page
        cache cost 2.66-4.46 CPU-s with one, 2.85-5.13 with two (3 interleaved runs, fresh
        memory, 2026-12-02: new page-cache pages are the VM's dearest work here).
        With ``direct`` (and ``threaded``), the plaintext is written to ``fd`` with
        ``O_DIRECT`` when the file system takes it (:class:`_DirectWriter`).
        ``sha``: a ``hashlib`` object to continue (e.g.
        already fed with a kept prefix of the file); ``expected_sha256`` is then checked
        against the whole.

        ``chunks`` may be views of one buffer that the iterable refills once the next item
        is asked for (``dds data get`` receives into one with ``recv_into``;
        :func:`decrypt_file` reads into one): what the engine keeps of a chunk (a partial
        segment, a header not yet complete) it copies. Chunks that end on segment
        boundaries are decrypted where they lie, without re-assembling segments.

        With ``threaded``: a worker thread iterates ``chunks`` (network / disk) and
        authenticates; the caller's thread hashes (and, when compressed, decompresses,
        leaving hashing to one more thread); without it everything runs in the caller's
        thread.
        """
        if (write is None) == (fd is None):
            raise ValueError("give write or fd")
        sink = self._sink
        sink.hashing = False
        sha = sha if sha is not None else hashlib.sha256()
        block = DEC_BLOCK_SEGMENTS * SEGMENT_SIZE
        pool: queue.Queue[bytearray] = queue.Queue()

        def decrypt_blocks(put: Callable[[tuple[bytearray, int]], bool],
                           stopped: Callable[[], bool]) -> None:
            cur: bytearray | None = None  # the block being filled
            used = 0  # its bytes used

            def emit(seg: memoryview, last: bool) -> None:
                nonlocal cur, used
                if cur is None:
                    cur = _get_free(pool, stopped) if threaded else pool.get_nowait()
                    if cur is None:
                        raise _Stopped()
                    used = 0
                assert self._opener is not None  # emit is called by the opener
                used += self._opener._open_into(seg, memoryview(cur)[used:], last)
                if used + SEGMENT_SIZE > block:
                    full, cur = cur, None
                    if not put((full, used)):
                        raise _Stopped()

            try:
                for c in chunks:
                    started = self._after_header(c)
                    if started:
                        started[0].feed_into(started[1], emit)
                if self._opener is None:
                    raise TruncatedError("stream ended inside the Crypt4GH header")
                self._opener.finish_into(emit)
            except _Stopped:
                return
            if cur is not None and used:
                put((cur, used))

        out: _PositionalWriter | _DirectWriter | None = None
        if fd is not None:
            out = _DirectWriter.open(fd, offset, DIRECT_IO_THREADS, pool.put) \
                if direct and threaded else None
            if out is None:
                out = _PositionalWriter(fd, offset, writers if threaded else 0, pool.put)

        def hash_write(pieces: list[Bytes], blk: bytearray | None) -> None:
            """In order: hash, then write (or hand to the writers, who free ``blk``)."""
            for p in pieces:
                sha.update(p)  # releases the GIL
            if out is not None:
                out.write(pieces, blk)
                return
            assert write is not None  # no fd: a write function
            for p in pieces:
                write(p)
            if blk is not None:
                pool.put(blk)

        plain = sink.dobj is None and sink.edits is None
        try:
            if not threaded:
                pool.put(bytearray(block))

                def put_inline(item: tuple[bytearray, int]) -> bool:
                    blk, used = item
                    hash_write(sink.process(memoryview(blk)[:used]), blk)
                    return True

                decrypt_blocks(put_inline, lambda: False)
            else:
                for _ in range(2 * QUEUE_DEPTH + 4):
                    pool.put(bytearray(block))
                blocks = _threaded(decrypt_blocks, QUEUE_DEPTH, name="c4gh-decrypt")
                if plain:
                    for blk, used in blocks:
                        hash_write(sink.process(memoryview(blk)[:used]), blk)
                else:
                    writer: _BackgroundWriter[tuple[list[Bytes], bytearray | None]] = \
                        _BackgroundWriter(lambda item: hash_write(*item), depth=QUEUE_DEPTH)
                    with writer as w:
                        for blk, used in blocks:
                            pieces: list[Bytes] = [
                                bytes(p) if isinstance(p, memoryview) else p
                                for p in sink.process(memoryview(blk)[:used])]
                            pool.put(blk)
                            w.write((pieces, None))
        except BaseException:
            if out is not None:
                out.close(raise_errors=False)
            raise
        if out is not None:
            out.close()
        expected, sink.expected_sha256 = sink.expected_sha256, None  # hashed here instead
        try:
            sink.finish()
        finally:
            sink.expected_sha256 = expected
        self.size = sink.size
        self.sha256 = sha.hexdigest()
        if expected is not None and self.sha256 != expected:
            raise ChecksumMismatchError(expected, self.sha256)


class _PositionalWriter:
    """``os.pwrite`` of in-order pieces at increasing offsets, by ``threads`` threads.

    Pieces are written in place (no copy): the recycled block they live in goes back to
    the pool (``free``) once written. ``close()`` waits for every write and re-raises the
    first error; ``write`` raises it as soon as it is known.
    """

    def __init__(self, fd: int, offset: int, threads: int,
                 free: Callable[[bytearray], None]) -> None:
        self.fd, self.pos, self.free = fd, offset, free
        self.errors: list[BaseException] = []
        self.q: queue.Queue[tuple[list[Bytes], int, bytearray | None] | None] = \
            queue.Queue(QUEUE_DEPTH)
        self.threads = [threading.Thread(target=self._run, name="c4gh-pwrite", daemon=True)
                        for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _pwrite(self, data: Bytes, pos: int) -> None:
        # At most PWRITE_PIECE per call: on the 2-core VM a new 1 GiB file written in
        # 64 KiB pwrites cost 1.6-2.0 CPU-s, in 1 MiB pwrites 2.5-3.1 (4 interleaved runs,
        # fresh memory, 2026-12-02; why is not isolated: bigger page-cache folios for
        # bigger writes is a guess).
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            done += os.pwrite(self.fd, mv[done : done + PWRITE_PIECE], pos + done)

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            pieces, pos, blk = item
            if not self.errors:
                try:
                    for p in pieces:
                        self._pwrite(p, pos)
                        pos += len(p)
                except BaseException as exc:  # noqa: BLE001 - re-raised in write()/close()
                    self.errors.append(exc)
            if blk is not None:
                self.free(blk)

    def write(self, pieces: list[Bytes], blk: bytearray | None) -> None:
        if self.errors:
            raise self.errors[0]
        size = sum(len(p) for p in pieces)
        if not self.threads:
            for p in pieces:
                self._pwrite(p, self.pos)
                self.pos += len(p)
            if blk is not None:
                self.free(blk)
            return
        self.q.put((pieces, self.pos, blk))
        self.pos += size

    def close(self, raise_errors: bool = True) -> None:
        for _ in self.threads:
            self.q.put(None)
        for t in self.threads:
            t.join()
        self.threads = []
        if self.errors and raise_errors:
            raise self.errors[0]


class _DirectWriter:
    """In-order pieces copied into page-aligned recycled buffers, written with ``O_DIRECT``.

    Why: on the 2-core VM (Firecracker; guest memory that has been free for a few seconds
    goes back to the host) every new page-cache page faults in the host on its first
    touch. A new 1 GiB file written through the page cache cost 1.4-3.1 CPU-s there (less
    in 64 KiB writes than in 1-16 MiB ones), with ``O_DIRECT`` from one recycled buffer
    0.15 CPU-s and 0.66 s (2026-12-02). The output is then not left in the page cache (it
    has gone to the device when the call returns).

    A stager thread copies the pieces into ``DIRECT_BLOCK`` buffers, then hands the
    caller's ``blk`` of them (a recycled block, a release function) to ``free``;
    ``threads`` threads ``pwrite`` full buffers.
    The tail that is not a multiple of ``DIRECT_ALIGN`` is written without ``O_DIRECT`` at
    ``close``. A file system that refuses an ``O_DIRECT`` write (EINVAL) gets the rest
    through the page cache. Memory: ``DIRECT_BUFFERS`` buffers, whatever the file size.
    """

    @classmethod
    def open(cls, fd: int, offset: int, threads: int,
             free: Callable[[Any], None]) -> _DirectWriter | None:
        """A direct writer for ``fd``, or None when ``O_DIRECT`` cannot be set on it."""
        o_direct = getattr(os, "O_DIRECT", 0)
        if not o_direct or offset % DIRECT_ALIGN:
            return None
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | o_direct)
        except OSError:
            return None
        return cls(fd, offset, threads, free, flags)

    def __init__(self, fd: int, offset: int, threads: int,
                 free: Callable[[Any], None], flags: int) -> None:
        self.fd, self.pos, self.free, self.flags = fd, offset, free, flags
        self.errors: list[BaseException] = []
        self.direct = True
        self.lock = threading.Lock()
        self.bufs: queue.Queue[mmap.mmap] = queue.Queue()
        for _ in range(DIRECT_BUFFERS):
            self.bufs.put(mmap.mmap(-1, DIRECT_BLOCK))
        self.cur: mmap.mmap | None = None
        self.used = 0
        self.inq: queue.Queue[tuple[list[Bytes], object] | None] = \
            queue.Queue(QUEUE_DEPTH)
        self.ioq: queue.Queue[tuple[mmap.mmap, int, int] | None] = queue.Queue()
        self.stager = threading.Thread(target=self._stage, name="c4gh-stage", daemon=True)
        self.threads = [threading.Thread(target=self._io, name="c4gh-pwrite", daemon=True)
                        for _ in range(threads)]
        for t in [self.stager, *self.threads]:
            t.start()

    def _buffered(self) -> None:
        """From now on through the page cache (``O_DIRECT`` refused)."""
        with self.lock:
            if self.direct:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self.flags)
                self.direct = False

    def _pwrite(self, mv: memoryview, pos: int) -> None:
        done = 0
        while done < len(mv):
            try:
                done += os.pwrite(self.fd, mv[done:], pos + done)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self.direct:
                    raise
                self._buffered()

    def _stage(self) -> None:
        while True:
            item = self.inq.get()
            if item is None:
                return
            pieces, blk = item
            try:
                if not self.errors:
                    for p in pieces:
                        self._copy(memoryview(p).cast("B"))
            except BaseException as exc:  # noqa: BLE001 - re-raised in write()/close()
                self.errors.append(exc)
            if blk is not None:
                self.free(blk)

    def _copy(self, mv: memoryview) -> None:
        while len(mv):
            if self.cur is None:
                self.cur, self.used = self.bufs.get(), 0
            n = min(len(mv), DIRECT_BLOCK - self.used)
            self.cur[self.used : self.used + n] = mv[:n]
            self.used += n
            mv = mv[n:]
            if self.used == DIRECT_BLOCK:
                self.ioq.put((self.cur, self.pos, DIRECT_BLOCK))
                self.pos += DIRECT_BLOCK
                self.cur = None

    def _io(self) -> None:
        while True:
            item = self.ioq.get()
            if item is None:
                return
            buf, pos, n = item
            if not self.errors:
                try:
                    with memoryview(buf) as mv:
                        self._pwrite(mv[:n], pos)
                except BaseException as exc:  # noqa: BLE001 - re-raised in write()/close()
                    self.errors.append(exc)
            self.bufs.put(buf)

    def write(self, pieces: list[Bytes], blk: object) -> None:
        if self.errors:
            raise self.errors[0]
        self.inq.put((pieces, blk))

    def close(self, raise_errors: bool = True) -> None:
        self.inq.put(None)
        self.stager.join()
        for _ in self.threads:
            self.ioq.put(None)
        for t in self.threads:
            t.join()
        self.threads = []
        try:
            if self.cur is not None and self.used and not self.errors and raise_errors:
                aligned = self.used - self.used % DIRECT_ALIGN
                with memoryview(self.cur) as mv:
                    if aligned:
                        self._pwrite(mv[:aligned], self.pos)
                    self._buffered()  # the tail is not a whole block
                    self._pwrite(mv[aligned : self.used], self.pos + aligned)
        except BaseException as exc:  # noqa: BLE001 - raised below
            self.errors.append(exc)
        finally:
            self._buffered()
            self.cur = None
        if self.errors and raise_errors:
            raise self.errors[0]


class _Stopped(Exception):
    """The consumer of a decryption pipeline went away."""


def _iter_reusing(f: BinaryIO, size: int = 64 * CIPHER_SEGMENT_SIZE) -> Iterator[memoryview]:
    """Read ``f`` in chunks into one buffer (each item valid until the next one)."""
    buf = bytearray(size)
    while True:
        n = _readinto_full(f, buf)
        if not n:
            return
        yield memoryview(buf)[:n]
        if n < size:
            return


class _AtomicOutput:
    """Temporary file in the destination directory, renamed into place only on success."""

    def __init__(self, dst_path: str | os.PathLike[str]) -> None:
        self.dst = os.fspath(dst_path)

    def __enter__(self) -> _AtomicOutput:
        d = os.path.dirname(os.path.abspath(self.dst))
        fd, self.tmp = tempfile.mkstemp(
            dir=d, prefix="." + os.path.basename(self.dst) + ".", suffix=".part"
        )
        self.file = os.fdopen(fd, "wb", buffering=0)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.file.close()
        finally:
            if exc_type is None:
                os.replace(self.tmp, self.dst)
            else:
                try:
                    os.unlink(self.tmp)
                except FileNotFoundError:
                    pass


def decrypt_stream(
    chunks: Iterable[Bytes],
    sink: Callable[[Bytes], object],
    **decryptor_kwargs: Any,
) -> Decryptor:
    """Decrypt ``chunks`` into ``sink`` (e.g. ``file.write``); returns the finished Decryptor.

    ``sink`` gets views that are valid only during the call (see :meth:`Decryptor.run`).
    """
    dec = Decryptor(**decryptor_kwargs)
    dec.run(chunks, sink)
    return dec


def decrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    reader_sk: bytes,
    expected_sha256: str | None = None,
    compressed: bool = False,
    *,
    header: bytes | None = None,
    expected_size: int | None = None,
    expected_stored_size: int | None = None,
) -> Decryptor:
    """Decrypt a ``.c4gh`` file (or, with ``header``, a segments-only file) to ``dst_path``.

    Output goes to a temporary file in the destination directory, renamed over
    ``dst_path`` only after every segment authenticated and the size / SHA-256 checks
    passed. On any error the temporary file is removed and ``dst_path`` is untouched.
    From ``DIRECT_MIN`` stored bytes on it is written with ``O_DIRECT`` where the file
    system allows it (on the disk, not left in the page cache; :class:`_DirectWriter`).
    Returns the finished :class:`Decryptor` (``.sha256``, ``.size``).
    """
    with open(src_path, "rb", buffering=0) as src:
        if header is None:
            head = src.read(1 << 16)
            _, hlen = split_packets(head)
            header = head[:hlen]
            src.seek(hlen)
        direct = os.fstat(src.fileno()).st_size >= DIRECT_MIN
        dec = Decryptor(
            header=header,
            reader_sk=reader_sk,
            compressed=compressed,
            expected_sha256=expected_sha256,
            expected_size=expected_size,
            expected_stored_size=expected_stored_size,
        )
        with _AtomicOutput(dst_path) as out:
            dec.run(_iter_reusing(src), fd=out.file.fileno(), direct=direct)
    return dec


def decrypt_bytes(data: bytes, reader_sk: bytes, **kwargs: Any) -> bytes:
    """In-memory convenience for a whole .c4gh file; returns the verified plaintext."""
    dec = Decryptor(reader_sk=reader_sk, **kwargs)
    out = dec.feed(data)
    out += dec.finish()
    return b"".join(out)


__all__ = [
    "C4GHError",
    "CIPHER_SEGMENT_SIZE",
    "Decryptor",
    "EncryptResult",
    "Encryptor",
    "SEGMENT_SIZE",
    "decrypt_bytes",
    "decrypt_file",
    "decrypt_stream",
    "encrypt_bytes",
    "encrypt_file",
    "encrypt_inline",
    "encrypt_stream",
    "segment_count",
    "stored_size",
]
