"""Streaming Crypt4GH encryption and decryption (hash + zstd + ChaCha20-Poly1305 in one pass).

Design notes (why it looks like this):

* **One pass.** The original bytes are read once; SHA-256 is computed on them, they are
  zstd-compressed when worthwhile (see :mod:`.compression`) and the result is cut into
  65 536-byte segments, each sealed as ``nonce(12) || ChaCha20-Poly1305(segment) || MAC(16)``.
* **Two cores.** ``hashlib`` (large buffers), ``zstandard`` and ``cryptography``'s AEAD all
  release the GIL, so a producer thread (read + SHA-256 + zstd) runs in parallel with the
  consumer (encryption + whatever the caller does with the chunks, e.g. an HTTP PUT). When
  compressing, zstd's own worker threads are used as well.
* **Bounded memory.** Stages talk through small bounded queues, so peak memory is a few
  tens of MB whatever the file size.
* **Integrity.** Segments are authenticated one by one, but they are independent: a
  dropped, duplicated or reordered segment still authenticates. The SHA-256 of the original
  bytes (stored next to the header) is what catches that, so decryptors always check it
  when it is known, and :func:`decrypt_file` only renames its temporary file into place
  after every check passed.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import compression
from .errors import (
    C4GHError,
    ChecksumMismatchError,
    DecompressionError,
    SegmentAuthError,
    SizeMismatchError,
    TruncatedError,
)
from .header import MAC_SIZE, NONCE_SIZE, encrypt_header, parse_header, split_packets

SEGMENT_SIZE = 65536
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
#: ``cryptography``'s AEAD keeps the GIL while it runs, so the encrypting thread briefly
#: releases it every few segments; otherwise the hashing / compressing thread (whose heavy
#: calls do release the GIL) waits up to the 5 ms switch interval each time it needs it.
YIELD_EVERY = 4


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


def _threaded(produce: Callable[..., None], depth: int) -> Iterator:
    """Run ``produce(put, stopped)`` in a worker thread and iterate over what it puts.

    ``put`` returns False once the consumer has gone away (generator closed early), so the
    worker never blocks forever. Exceptions in the worker are re-raised in the consumer.
    """
    q: queue.Queue = queue.Queue(depth)
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

    t = threading.Thread(target=run, name="c4gh-pipeline", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


class _BackgroundWriter:
    """Hand writes to a thread so disk I/O overlaps with the (GIL-holding) crypto."""

    def __init__(self, write: Callable[[bytes], object], depth: int = 2) -> None:
        self._write = write
        self._q: queue.Queue = queue.Queue(depth)
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

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(data)

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
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
        zstd_level: int = compression.ZSTD_LEVEL,
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
        self._zstd_level = zstd_level
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

    # -- producer: read, hash, (compress), cut into plaintext segments
    def _produce(self, put: Callable[[object], bool], stopped: Callable[[], bool]) -> None:
        sha = hashlib.sha256()
        total = 0
        src = self._src
        head = self._head
        sha.update(head)
        total += len(head)
        if self.compressed:
            chunker = compression.make_compressor(self._zstd_threads, self._zstd_level).chunker(
                size=-1, chunk_size=SEGMENT_SIZE
            )
            buf = bytearray(READ_SIZE)  # zstd copies its input: one buffer is enough
            segs = list(chunker.compress(head)) if head else []
            more = len(head) == compression.SAMPLE_SIZE  # a short head means EOF
            while more:
                if segs and not put((None, segs)):
                    return
                n = _readinto_full(src, buf)
                more = n == len(buf)
                mv = memoryview(buf)[:n]
                sha.update(mv)
                total += n
                segs = list(chunker.compress(mv)) if n else []
            segs += list(chunker.finish())
            if segs and not put((None, segs)):
                return
        else:
            # Plaintext blocks are recycled through a pool: fresh multi-MB allocations cost
            # page faults that, on VMs, are slower than the encryption itself.
            if head:
                mv = memoryview(head)
                segs = [mv[i : i + SEGMENT_SIZE] for i in range(0, len(mv), SEGMENT_SIZE)]
                if not put((None, segs)):
                    return
            n = len(head)
            while n and n % compression.SAMPLE_SIZE == 0:
                buf = self._get_free(stopped)
                if buf is None:
                    return
                n = _readinto_full(src, buf)
                if not n:
                    break
                mv = memoryview(buf)[:n]
                sha.update(mv)
                total += n
                if not put((buf, [mv[i : i + SEGMENT_SIZE] for i in range(0, n, SEGMENT_SIZE)])):
                    return
                if n < len(buf):
                    break
        put((total, sha.hexdigest()))

    def _get_free(self, stopped: Callable[[], bool]) -> bytearray | None:
        while not stopped():
            try:
                return self._pool.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def __iter__(self) -> Iterator[bytearray]:
        """Fresh ``bytearray`` chunks (safe to keep); see :meth:`chunks` for the fast path."""
        return self.chunks(reuse=False)

    def chunks(self, *, reuse: bool = False) -> Iterator[bytearray | memoryview]:
        """Iterate over ciphertext chunks (whole segments).

        With ``reuse=True`` every chunk is a ``memoryview`` of one internal buffer that is
        only valid until the next chunk is requested: use it when each chunk is written or
        sent before asking for the next one (saves page-faulting a fresh buffer per chunk).
        """
        if self._started:
            raise RuntimeError("an Encryptor can only be iterated once")
        self._started = True
        self._pool: queue.Queue = queue.Queue()
        for _ in range(POOL_BLOCKS):
            self._pool.put(bytearray(READ_SIZE))
        aead = ChaCha20Poly1305(self._session_key)
        cap = self._spc * CIPHER_SEGMENT_SIZE
        out = bytearray(cap)
        omv = memoryview(out)
        pos = 0
        stored = 0
        nseg = 0
        summary: tuple[int, str] | None = None
        for item in _threaded(self._produce, QUEUE_DEPTH):
            buf, segs = item
            if not isinstance(segs, list):
                summary = item
                continue
            nonces = os.urandom(NONCE_SIZE * len(segs))
            for i, seg in enumerate(segs):
                n = nonces[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]
                end = pos + NONCE_SIZE + len(seg) + MAC_SIZE
                omv[pos : pos + NONCE_SIZE] = n
                aead.encrypt_into(n, seg, None, omv[pos + NONCE_SIZE : end])
                pos = end
                nseg += 1
                if not nseg % YIELD_EVERY:
                    time.sleep(0)
                if pos + CIPHER_SEGMENT_SIZE > cap:
                    stored += pos
                    if reuse:
                        yield omv[:pos]
                    else:
                        del omv
                        if pos != cap:
                            del out[pos:]
                        yield out
                        out = bytearray(cap)
                        omv = memoryview(out)
                    pos = 0
            del segs, seg
            if buf is not None:
                self._pool.put(buf)
        if pos:
            stored += pos
            if reuse:
                yield omv[:pos]
            else:
                del omv
                del out[pos:]
                yield out
        assert summary is not None
        self._result = EncryptResult(
            header=self.header,
            stored_size=stored,
            original_size=summary[0],
            compressed=self.compressed,
            sha256=summary[1],
            segments=nseg,
        )


def encrypt_stream(
    source: BinaryIO, sink: BinaryIO, recipients: list[bytes], *, write_header: bool = True,
    **kwargs,
) -> EncryptResult:
    """Encrypt ``source`` into the writable ``sink`` (header first unless ``write_header``)."""
    enc = Encryptor(source, recipients, **kwargs)
    if write_header:
        sink.write(enc.header)
    for chunk in enc.chunks(reuse=True):
        sink.write(chunk)
    return enc.result


def encrypt_file(
    src_path: str | os.PathLike, dst_path: str | os.PathLike, recipient_pks: list[bytes],
    **kwargs,
) -> EncryptResult:
    """Encrypt a file into a standard ``.c4gh`` file (header + segments).

    Written to a temporary file next to ``dst_path`` and renamed at the end, so a crash never
    leaves a half-written destination.
    """
    with open(src_path, "rb", buffering=0) as src:
        with _AtomicOutput(dst_path) as out:
            return encrypt_stream(src, out.file, recipient_pks, **kwargs)


def encrypt_bytes(data: bytes, recipient_pks: list[bytes], **kwargs) -> tuple[bytes, EncryptResult]:
    """In-memory convenience: returns (whole .c4gh file bytes, result)."""
    import io

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

    def apply(self, data: bytes) -> bytes:
        out = []
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

    def _open(self, seg: bytes | memoryview, last: bool = False) -> bytes:
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
            if not self.index % YIELD_EVERY:
                time.sleep(0)  # the AEAD holds the GIL: let the other stages run
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

    def _count(self, n: int) -> None:
        self.seen += n
        if self.expected is not None and self.seen > self.expected:
            raise SizeMismatchError(
                f"more segment data than the stored size ({self.seen} > {self.expected} bytes)"
            )

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        self._count(len(data))
        out = []
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
        out = []
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

    def _account(self, data: bytes) -> None:
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise SizeMismatchError(
                f"decrypted data is larger than the expected {self.expected_size} bytes"
            )
        if self.hashing:
            self.sha.update(data)

    def process(self, plain: bytes) -> list[bytes]:
        if self.edits is not None:
            plain = self.edits.apply(plain)
        if self.dobj is None:
            self._account(plain)
            return [plain]
        out = []
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

    def _start(self, keys: list[bytes], edit_list: list[int] | None) -> None:
        self._opener = _SegmentOpener(keys, self._stored)
        if edit_list is not None:
            self._sink.edits = _EditList(edit_list)

    def _try_header(self) -> bool:
        from .errors import HeaderError

        try:
            _, hlen = split_packets(self._pending)
        except HeaderError as exc:
            if "truncated" in str(exc) or "too short" in str(exc):
                return False
            raise
        info = parse_header(bytes(self._pending[:hlen]), self._reader_sk)
        self._start(
            info.session_keys, self._edit_list if self._edit_list is not None else info.edit_list
        )
        return True

    def open_segments(self, data: bytes) -> list[bytes]:
        """Stage 1 only: authenticated plaintext segments (no decompression / hashing)."""
        if self._opener is None:
            self._pending += data
            if not self._try_header():
                if len(self._pending) > 1 << 24:
                    raise TruncatedError("no complete Crypt4GH header in the first 16 MiB")
                return []
            _, hlen = split_packets(self._pending)
            data = bytes(self._pending[hlen:])
            self._pending = bytearray()
        return self._opener.feed(data)

    def _finish_segments(self) -> list[bytes]:
        if self._opener is None:
            raise TruncatedError("stream ended inside the Crypt4GH header")
        return self._opener.finish()

    def _sink_all(self, segs: list[bytes]) -> list[bytes]:
        out = []
        for s in segs:
            out.extend(self._sink.process(s))
        return out

    def feed(self, data: bytes) -> list[bytes]:
        """Decrypt whatever complete segments ``data`` completes; return plaintext pieces."""
        return self._sink_all(self.open_segments(data))

    def finish(self) -> list[bytes]:
        """Flush the last segment and run every end-of-stream check (raises on failure)."""
        out = self._sink_all(self._finish_segments())
        self._sink.finish()
        self.sha256 = self._sink.sha.hexdigest()
        self.size = self._sink.size
        return out

    def stream(self, chunks: Iterable[bytes], *, threaded: bool = True) -> Iterator[bytes]:
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

        def produce(put: Callable[[object], bool], stopped: Callable[[], bool]) -> None:
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

    def __init__(self, dst_path: str | os.PathLike) -> None:
        self.dst = os.fspath(dst_path)

    def __enter__(self) -> _AtomicOutput:
        d = os.path.dirname(os.path.abspath(self.dst))
        fd, self.tmp = tempfile.mkstemp(
            dir=d, prefix="." + os.path.basename(self.dst) + ".", suffix=".part"
        )
        self.file = os.fdopen(fd, "wb", buffering=0)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
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
    chunks: Iterable[bytes],
    sink: Callable[[bytes], object],
    **decryptor_kwargs,
) -> Decryptor:
    """Decrypt ``chunks`` into ``sink`` (e.g. ``file.write``); returns the finished Decryptor."""
    dec = Decryptor(**decryptor_kwargs)
    for piece in dec.stream(chunks):
        sink(piece)
    return dec


def decrypt_file(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
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
    Returns the finished :class:`Decryptor` (``.sha256``, ``.size``).
    """
    with open(src_path, "rb", buffering=0) as src:
        if header is None:
            head = src.read(1 << 16)
            _, hlen = split_packets(head)
            header = head[:hlen]
            src.seek(hlen)
        dec = Decryptor(
            header=header,
            reader_sk=reader_sk,
            compressed=compressed,
            expected_size=expected_size,
            expected_stored_size=expected_stored_size,
        )
        dec._sink.hashing = False
        sha = hashlib.sha256()

        def hash_and_write(piece: bytes) -> None:
            sha.update(piece)  # releases the GIL: overlaps with decryption
            write(piece)

        with _AtomicOutput(dst_path) as out:
            write = out.file.write
            with _BackgroundWriter(hash_and_write, depth=32) as w:
                for piece in dec.stream(_iter_reusing(src)):
                    w.write(piece)
            dec.sha256 = sha.hexdigest()
            if expected_sha256 is not None and dec.sha256 != expected_sha256.lower():
                raise ChecksumMismatchError(expected_sha256.lower(), dec.sha256)
    return dec


def decrypt_bytes(data: bytes, reader_sk: bytes, **kwargs) -> bytes:
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
    "encrypt_stream",
    "segment_count",
    "stored_size",
]
