"""Crypt4GH format: header layout, sizes, recipients, edit lists, compression detection."""

import io
import os
import random
import struct

import pytest

import c4gh
from c4gh import header as hdr
from c4gh.stream import Decryptor, Encryptor


@pytest.fixture(scope="module")
def kp():
    return c4gh.generate_keypair()


def test_keypair_and_derivation(kp):
    sk, pk = kp
    assert len(sk) == 32 and len(pk) == 32
    assert c4gh.derive_public_key(sk) == pk


def test_single_recipient_header_is_124_bytes(kp):
    h = c4gh.encrypt_header(os.urandom(32), [kp[1]])
    assert len(h) == 124 == c4gh.SINGLE_RECIPIENT_HEADER_SIZE
    assert h[:8] == b"crypt4gh"
    assert struct.unpack("<II", h[8:16]) == (1, 1)
    assert struct.unpack("<II", h[16:24]) == (108, 0)  # packet length, X25519 method
    assert c4gh.header_length(h + b"xyz") == 124


def test_parse_header_roundtrip(kp):
    key = os.urandom(32)
    info = c4gh.parse_header(c4gh.encrypt_header(key, [kp[1]]), kp[0])
    assert info.session_keys == [key]
    assert info.edit_list is None
    assert info.header_len == 124


def test_multi_recipient_header():
    keys = [c4gh.generate_keypair() for _ in range(3)]
    session = os.urandom(32)
    h = c4gh.encrypt_header(session, [pk for _, pk in keys])
    assert len(h) == 16 + 3 * 108
    for sk, _ in keys:
        assert c4gh.parse_header(h, sk).session_keys == [session]
    other_sk, _ = c4gh.generate_keypair()
    with pytest.raises(c4gh.NoMatchingKeyError, match="no header packet is addressed"):
        c4gh.parse_header(h, other_sk)


def test_edit_list_parsing_and_application(kp):
    data = bytes(range(256)) * 1000
    edit = [10, 100, 5000, 20]  # skip 10, keep 100, skip 5000, keep 20, drop the rest
    key = os.urandom(32)
    h = c4gh.encrypt_header(key, [kp[1]], edit_list=edit)
    info = c4gh.parse_header(h, kp[0])
    assert info.edit_list == edit
    enc = Encryptor(io.BytesIO(data), [kp[1]], compress=False)
    enc._session_key = key  # reuse the session key of our edit-list header
    body = b"".join(enc)
    dec = Decryptor(header=h, reader_sk=kp[0])
    out = b"".join(dec.feed(body) + dec.finish())
    assert out == data[10:110] + data[5110:5130]
    # odd count: the final 'keep' runs to the end
    dec = Decryptor(session_keys=[key], edit_list=[3, 4, 5])
    out = b"".join(dec.feed(body) + dec.finish())
    assert out == data[3:7] + data[12:]


def test_unknown_packet_type_rejected(kp):
    payload = struct.pack("<I", 7) + b"whatever"
    h = hdr._build([payload], [kp[1]], None)
    with pytest.raises(c4gh.UnknownPacketTypeError, match="unknown Crypt4GH header packet type 7"):
        c4gh.parse_header(h, kp[0])


def test_bad_magic_and_version(kp):
    h = bytearray(c4gh.encrypt_header(os.urandom(32), [kp[1]]))
    with pytest.raises(c4gh.HeaderError, match="magic"):
        c4gh.parse_header(b"crypt4gX" + bytes(h[8:]), kp[0])
    h[8] = 2
    with pytest.raises(c4gh.HeaderError, match="version 2"):
        c4gh.parse_header(bytes(h), kp[0])
    with pytest.raises(c4gh.HeaderError, match="truncated"):
        c4gh.parse_header(bytes(c4gh.encrypt_header(os.urandom(32), [kp[1]]))[:100], kp[0])


def test_reencrypt_header(kp):
    key = os.urandom(32)
    h = c4gh.encrypt_header(key, [kp[1]])
    new = [c4gh.generate_keypair() for _ in range(2)]
    h2 = c4gh.reencrypt_header(h, kp[0], [pk for _, pk in new])
    assert len(h2) == 16 + 2 * 108
    assert h2[24:56] != h[24:56]  # fresh ephemeral writer key
    for sk, _ in new:
        assert c4gh.parse_header(h2, sk).session_keys == [key]
    with pytest.raises(c4gh.NoMatchingKeyError):
        c4gh.parse_header(h2, kp[0])  # old reader dropped


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 7])
def test_exact_sizes_uncompressed(kp, size):
    data = os.urandom(size)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]], compress=False)
    full, rem = divmod(size, 65536)
    expected = full * 65564 + (rem + 28 if rem else 0)
    assert res.stored_size == expected == c4gh.stored_size(size) == len(blob) - 124
    assert res.segments == c4gh.segment_count(expected)
    assert res.original_size == size
    assert c4gh.decrypt_bytes(blob, kp[0], expected_sha256=res.sha256) == data


def test_empty_file_has_no_segments(kp):
    blob, res = c4gh.encrypt_bytes(b"", [kp[1]])
    assert len(blob) == 124 and res.stored_size == 0 and res.segments == 0
    assert res.compressed is False
    assert res.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert c4gh.decrypt_bytes(blob, kp[0], expected_sha256=res.sha256) == b""


@pytest.mark.parametrize(
    "head,name",
    [
        (b"\x1f\x8b\x08\x04" + b"\x00" * 100, "gzip"),
        (b"BZh91AY&SY", "bzip2"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (b"PK\x03\x04\x14\x00", "zip"),
        (b"CRAM\x03\x00", "CRAM"),
        (b"7z\xbc\xaf\x27\x1c\x00", "7z"),
        (b"\x04\x22\x4d\x18\x00", "lz4"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
    ],
)
def test_compression_detection_by_magic(head, name):
    assert name.split()[0].lower() in (c4gh.detect_compressed_format(head) or "").lower()
    assert c4gh.should_compress(head + b"A" * 10000) is False


def test_compression_decision_for_text_and_random():
    assert c4gh.detect_compressed_format(b"@read1\nACGT\n+\nIIII\n") is None
    assert c4gh.should_compress(b"@read1\nACGTACGTTT\n+\nIIIIIIIIII\n" * 5000) is True
    assert c4gh.should_compress(os.urandom(300_000)) is False
    assert c4gh.should_compress(b"") is False


def test_compressed_roundtrip_and_flag(kp):
    data = b"@SEQ\nACGTTGCA\n+\nIIIIIIII\n" * 50_000
    blob, res = c4gh.encrypt_bytes(data, [kp[1]])
    assert res.compressed is True
    assert res.stored_size < len(data) // 10
    assert c4gh.decrypt_bytes(blob, kp[0], compressed=True, expected_sha256=res.sha256) == data
    gz = b"\x1f\x8b" + os.urandom(200_000)
    _, res2 = c4gh.encrypt_bytes(gz, [kp[1]])
    assert res2.compressed is False


def test_header_in_db_segments_in_storage(kp):
    """Header and segments are stored apart; header || segments is a standard file."""
    data = os.urandom(200_000)
    enc = Encryptor(io.BytesIO(data), [kp[1]], segments_per_chunk=2)
    chunks = [bytes(c) for c in enc]
    assert all(len(c) == 2 * 65564 for c in chunks[:-1])
    res = enc.result
    segments = b"".join(chunks)
    assert len(segments) == res.stored_size
    dec = Decryptor(header=res.header, reader_sk=kp[0], expected_sha256=res.sha256,
                    expected_size=len(data), expected_stored_size=res.stored_size)
    # arbitrary HTTP-like chunking
    out = []
    for i in range(0, len(segments), 7777):
        out += dec.feed(segments[i : i + 7777])
    out += dec.finish()
    assert b"".join(out) == data and dec.sha256 == res.sha256 and dec.size == len(data)


@pytest.mark.parametrize("level", [None, 3], ids=["default", "level-3"])
def test_compressed_segments_are_one_standard_zstd_frame(kp, level):
    """The segments of a compressed file (zstd's multithreaded mode, several jobs) hold
    one ordinary zstd frame that a decoder limited to an 8 MiB window reads."""
    import zstandard

    rnd = random.Random(5)
    data = b"".join(b"@r%d\n%s\n+\n%s\n" % (i, bytes(rnd.choices(b"ACGT", k=150)),
                                             bytes(rnd.choices(b"FF:,#", k=150)))
                    for i in range(40_000))  # ~12 MB
    enc = Encryptor(io.BytesIO(data), [kp[1]], zstd_threads=2, zstd_level=level)
    body = b"".join(enc)
    assert enc.result.compressed is True
    frame = c4gh.decrypt_bytes(enc.header + body, kp[0])  # not decompressed
    params = zstandard.get_frame_parameters(frame)
    assert params.window_size <= 8 << 20
    dctx = zstandard.ZstdDecompressor(max_window_size=8 << 20)
    assert dctx.decompressobj().decompress(frame) == data
    assert c4gh.decrypt_bytes(enc.header + body, kp[0], compressed=True,
                              expected_sha256=enc.result.sha256) == data
