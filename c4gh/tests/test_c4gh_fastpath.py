"""The engine's fast paths: in-line small files, recycled part buffers, Decryptor.run."""

import hashlib
import io
import os
import threading

import pytest

import c4gh
from c4gh import stream


@pytest.fixture(scope="module")
def kp():
    return c4gh.generate_keypair()


FASTQ = b"@r1\nACGTACGTAC\n+\nIIIIIIIIII\n" * 20_000
BASES = bytes(b"ACGT"[i % 4] for i in range(256))


@pytest.mark.parametrize("data", [b"", b"x", os.urandom(4096), os.urandom(200_000), FASTQ],
                         ids=["empty", "1B", "4KiB", "200k-random", "fastq"])
def test_encrypt_inline_is_a_standard_file(kp, data):
    body, res = c4gh.encrypt_inline(data, [kp[1]])
    assert res.stored_size == len(body)
    assert res.original_size == len(data)
    assert res.sha256 == hashlib.sha256(data).hexdigest()
    assert res.compressed is (data is FASTQ)
    assert res.segments == c4gh.segment_count(len(body))
    out = c4gh.decrypt_bytes(res.header + bytes(body), kp[0], compressed=res.compressed,
                             expected_sha256=res.sha256, expected_size=len(data))
    assert out == data


def test_encrypt_inline_starts_no_thread(kp):
    before = threading.active_count()
    c4gh.encrypt_inline(os.urandom(4096), [kp[1]])
    assert threading.active_count() == before


@pytest.mark.parametrize("compress", [False, True])
def test_recycled_chunks_release_and_reuse(kp, compress):
    data = (FASTQ * 3) if compress else os.urandom(3_000_000)
    enc = c4gh.Encryptor(io.BytesIO(data), [kp[1]], compress=compress, segments_per_chunk=2)
    seen_buffers = set()
    body = bytearray()
    for chunk, release in enc.recycled(2):
        seen_buffers.add(id(chunk.obj))
        body += chunk
        release()
    assert len(seen_buffers) <= 2
    res = enc.result
    assert res.stored_size == len(body)
    out = c4gh.decrypt_bytes(enc.header + bytes(body), kp[0], compressed=compress,
                             expected_sha256=res.sha256)
    assert out == data


def test_recycled_waits_for_a_release_from_another_thread(kp):
    data = os.urandom(1_000_000)
    enc = c4gh.Encryptor(io.BytesIO(data), [kp[1]], compress=False, segments_per_chunk=1)
    held = []
    body = bytearray()
    for chunk, release in enc.recycled(2):
        body += chunk
        held.append(release)
        if len(held) == 2:  # both buffers out: release one later, from another thread
            threading.Timer(0.05, held.pop(0)).start()
    for release in held:
        release()
    assert c4gh.decrypt_bytes(enc.header + bytes(body), kp[0]) == data


def _split(blob: bytes, step: int):
    return [blob[i:i + step] for i in range(0, len(blob), step)]


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("step", [1000, 65564, 3 << 20])
def test_run_any_chunking(kp, threaded, compress, step):
    data = (FASTQ * 4) if compress else os.urandom(2_500_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=compress)
    out = bytearray()
    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0], compressed=compress,
                         expected_sha256=res.sha256, expected_size=len(data),
                         expected_stored_size=res.stored_size)
    dec.run(_split(blob[len(res.header):], step), out.extend, threaded=threaded)
    assert bytes(out) == data
    assert dec.sha256 == res.sha256 and dec.size == len(data)


def test_run_continues_a_hash_over_a_kept_prefix(kp):
    data = os.urandom(5 * c4gh.SEGMENT_SIZE + 123)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    body = blob[len(res.header):]
    keep = 2  # segments already on disk
    sha = hashlib.sha256(data[:keep * c4gh.SEGMENT_SIZE])
    keys = c4gh.parse_header(res.header, kp[0]).session_keys
    out = bytearray()
    dec = c4gh.Decryptor(keys, expected_sha256=res.sha256,
                         expected_size=len(data) - keep * c4gh.SEGMENT_SIZE)
    dec.run([body[keep * c4gh.CIPHER_SEGMENT_SIZE:]], out.extend, sha=sha)
    assert bytes(out) == data[keep * c4gh.SEGMENT_SIZE:]


@pytest.mark.parametrize("threaded", [True, False])
def test_run_detects_reordered_and_truncated_data(kp, threaded):
    data = os.urandom(4 * c4gh.SEGMENT_SIZE)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    segs = _split(blob[len(res.header):], c4gh.CIPHER_SEGMENT_SIZE)
    swapped = b"".join([segs[1], segs[0], *segs[2:]])
    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0], expected_sha256=res.sha256)
    with pytest.raises(c4gh.ChecksumMismatchError):
        dec.run([swapped], lambda _p: None, threaded=threaded)
    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0],
                         expected_stored_size=res.stored_size)
    with pytest.raises(c4gh.TruncatedError):
        dec.run([b"".join(segs[:3])], lambda _p: None, threaded=threaded)
    flipped = bytearray(blob[len(res.header):])
    flipped[70_000] ^= 1
    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0])
    with pytest.raises(c4gh.SegmentAuthError):
        dec.run([bytes(flipped)], lambda _p: None, threaded=threaded)


def test_run_with_the_header_in_the_stream(kp):
    data = os.urandom(300_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]])
    out = bytearray()
    c4gh.Decryptor(reader_sk=kp[0], expected_sha256=res.sha256).run(
        _split(blob, 50), out.extend)
    assert bytes(out) == data


def test_run_stops_its_worker_when_the_writer_fails(kp):
    data = os.urandom(8 << 20)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    before = threading.active_count()

    def boom(_piece):
        raise OSError("disk full")

    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0])
    with pytest.raises(OSError, match="disk full"):
        dec.run(_split(blob[len(res.header):], 1 << 20), boom)
    assert threading.active_count() == before


def test_no_gil_handoff_sleep_left():
    # The ``time.sleep(0)`` every few segments is gone from both directions.
    import ast

    assert not hasattr(stream, "YIELD_EVERY")
    tree = ast.parse(open(stream.__file__).read())
    calls = [n.func.attr for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "sleep" not in calls


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize("compress", [False, True])
def test_run_into_a_file_at_an_offset(tmp_path, kp, threaded, compress):
    data = (FASTQ * 6) if compress else os.urandom(5_000_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=compress)
    prefix = b"kept" * 1000
    path = tmp_path / "out"
    path.write_bytes(prefix)
    sha = hashlib.sha256(prefix)
    dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0], compressed=compress,
                         expected_sha256=hashlib.sha256(prefix + data).hexdigest())
    with open(path, "r+b") as f:
        dec.run(_split(blob[len(res.header):], 777_777), fd=f.fileno(), offset=len(prefix),
                sha=sha, threaded=threaded, writers=3)
    assert path.read_bytes() == prefix + data


def test_run_into_a_file_reports_a_write_error(kp):
    data = os.urandom(3_000_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    r, w = os.pipe()
    os.close(r)  # pwrite on a pipe fails (ESPIPE): the error reaches the caller
    try:
        dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0])
        with pytest.raises(OSError):
            dec.run([blob[len(res.header):]], fd=w)
    finally:
        os.close(w)


def _o_direct_works(path):
    """Whether the file system of ``path`` takes O_DIRECT (tmpfs of old kernels does not)."""
    import fcntl

    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(path)


class _PwriteSpy:
    """Wraps os.pwrite in the engine: counts writes made with O_DIRECT set on the fd;
    with ``refuse``, fails those with EINVAL (a file system that takes the flag but not
    the writes)."""

    def __init__(self, monkeypatch, refuse=False):
        import errno
        import fcntl

        self.direct = self.buffered = 0
        real = os.pwrite

        def pwrite(fd, data, pos):
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
                self.direct += 1
                if refuse:
                    raise OSError(errno.EINVAL, "Invalid argument")
                assert pos % stream.DIRECT_ALIGN == 0 and len(data) % stream.DIRECT_ALIGN == 0
            else:
                self.buffered += 1
            return real(fd, data, pos)

        monkeypatch.setattr(stream.os, "pwrite", pwrite)


@pytest.mark.parametrize(("compress", "size"), [
    (False, 9_000_001),                 # two whole staging buffers and an unaligned tail
    (False, 2 * stream.DIRECT_BLOCK),   # ends on a buffer boundary: no tail
    (False, 3 * 4096),                  # below one staging buffer, aligned
    (True, 0),                          # FASTQ: zstd output of any length
], ids=["random-tail", "random-whole", "small-aligned", "fastq"])
def test_decrypt_file_writes_with_o_direct(tmp_path, kp, monkeypatch, compress, size):
    data = FASTQ * 30 if compress else os.urandom(size)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=compress)
    (tmp_path / "a.c4gh").write_bytes(blob)
    monkeypatch.setattr(stream, "DIRECT_MIN", 0)
    spy = _PwriteSpy(monkeypatch)
    dec = c4gh.decrypt_file(tmp_path / "a.c4gh", tmp_path / "b", kp[0],
                            expected_sha256=res.sha256, compressed=compress)
    assert dec.sha256 == res.sha256
    assert (tmp_path / "b").read_bytes() == data
    if _o_direct_works(tmp_path / "probe"):
        assert spy.direct > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.c4gh", "b"]


def test_direct_writer_falls_back_when_writes_are_refused(tmp_path, kp, monkeypatch):
    data = os.urandom(9_000_001)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    spy = _PwriteSpy(monkeypatch, refuse=True)
    path = tmp_path / "out"
    with open(path, "wb") as f:
        dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0], expected_sha256=res.sha256)
        dec.run(_split(blob[len(res.header):], 1_000_003), fd=f.fileno(), direct=True)
        import fcntl
        assert not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_DIRECT  # flags restored
    assert path.read_bytes() == data
    if _o_direct_works(tmp_path / "probe"):
        assert 1 <= spy.direct <= stream.DIRECT_IO_THREADS  # refused, then the page cache
        assert spy.buffered > 0


def test_direct_writer_reports_a_write_error(tmp_path, kp, monkeypatch):
    data = os.urandom(9_000_001)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)

    def pwrite(fd, data, pos):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stream.os, "pwrite", pwrite)
    with open(tmp_path / "out", "wb") as f:
        dec = c4gh.Decryptor(header=res.header, reader_sk=kp[0], expected_sha256=res.sha256)
        with pytest.raises(OSError, match="No space"):
            dec.run([blob[len(res.header):]], fd=f.fileno(), direct=True)


def test_buffered_pwrites_are_at_most_one_segment(tmp_path, kp, monkeypatch):
    data = os.urandom(3_000_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    sizes = []
    real = os.pwrite

    def pwrite(fd, buf, pos):
        sizes.append(len(buf))
        return real(fd, buf, pos)

    monkeypatch.setattr(stream.os, "pwrite", pwrite)
    with open(tmp_path / "out", "wb") as f:
        c4gh.Decryptor(header=res.header, reader_sk=kp[0]).run(
            [blob[len(res.header):]], fd=f.fileno())
    assert (tmp_path / "out").read_bytes() == data
    assert max(sizes) == stream.PWRITE_PIECE


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("write_header", [True, False])
def test_encrypt_file_writes_with_o_direct(tmp_path, kp, monkeypatch, compress, write_header):
    # reads of random bases: compressed, still several staging buffers of output
    data = b"".join(b"@r\n%s\n+\n%s\n" % (os.urandom(150).translate(BASES), b"F" * 150)
                    for _ in range(60_000)) if compress else os.urandom(9_000_001)
    (tmp_path / "a").write_bytes(data)
    monkeypatch.setattr(stream, "DIRECT_MIN", 0)
    spy = _PwriteSpy(monkeypatch)
    res = c4gh.encrypt_file(tmp_path / "a", tmp_path / "a.c4gh", [kp[1]],
                            write_header=write_header)
    assert res.compressed is compress
    blob = (tmp_path / "a.c4gh").read_bytes()
    assert len(blob) == (len(res.header) if write_header else 0) + res.stored_size
    if not write_header:
        blob = res.header + blob
    assert c4gh.decrypt_bytes(blob, kp[0], compressed=compress,
                              expected_sha256=res.sha256) == data
    if _o_direct_works(tmp_path / "probe"):
        assert spy.direct > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.c4gh"]


def test_encrypt_file_direct_error_leaves_no_file(tmp_path, kp, monkeypatch):
    (tmp_path / "a").write_bytes(os.urandom(9_000_001))
    if not _o_direct_works(tmp_path / "probe"):
        pytest.skip("this file system does not take O_DIRECT (page-cache path: other tests)")

    def pwrite(fd, data, pos):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stream.os, "pwrite", pwrite)
    monkeypatch.setattr(stream, "DIRECT_MIN", 0)
    with pytest.raises(OSError, match="No space"):
        c4gh.encrypt_file(tmp_path / "a", tmp_path / "a.c4gh", [kp[1]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
