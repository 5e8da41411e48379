"""Every corruption is detected with the right error and never reaches the destination."""

import os

import pytest

import c4gh

SEG = 65564
HDR = 124


@pytest.fixture(scope="module")
def kp():
    return c4gh.generate_keypair()


@pytest.fixture(scope="module")
def enc(kp, tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    data = os.urandom(4 * 65536 + 5000)  # 5 segments, last one short
    (d / "plain").write_bytes(data)
    res = c4gh.encrypt_file(d / "plain", d / "file.c4gh", [kp[1]])
    assert res.compressed is False
    return data, res, (d / "file.c4gh").read_bytes()


def _decrypt(tmp_path, blob, sk, res, **kw):
    src = tmp_path / "in.c4gh"
    src.write_bytes(blob)
    dst = tmp_path / "out.bin"
    try:
        return c4gh.decrypt_file(src, dst, sk, expected_sha256=res.sha256, **kw)
    finally:
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("in.c4gh", "out.bin")]
        assert leftovers == [], "temporary file left behind"


def _assert_fails(tmp_path, blob, sk, res, exc, match=None, **kw):
    with pytest.raises(exc, match=match):
        _decrypt(tmp_path, blob, sk, res, **kw)
    assert not (tmp_path / "out.bin").exists()


def test_clean_file_decrypts(tmp_path, kp, enc):
    data, res, blob = enc
    dec = _decrypt(tmp_path, blob, kp[0], res)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert dec.sha256 == res.sha256


def test_existing_destination_untouched_on_failure(tmp_path, kp, enc):
    data, res, blob = enc
    (tmp_path / "out.bin").write_bytes(b"precious")
    bad = bytearray(blob)
    bad[HDR + SEG + 100] ^= 1
    with pytest.raises(c4gh.SegmentAuthError):
        _decrypt(tmp_path, bytes(bad), kp[0], res)
    assert (tmp_path / "out.bin").read_bytes() == b"precious"


@pytest.mark.parametrize(
    "segment,offset,region",
    [(0, 0, "nonce"), (0, 11, "nonce"), (1, 12, "ciphertext"), (2, 40000, "ciphertext"),
     (3, SEG - 1, "mac"), (3, SEG - 16, "mac"), (4, 5000 + 27, "mac of short last segment")],
)
def test_flipped_bit_in_segment(tmp_path, kp, enc, segment, offset, region):
    _, res, blob = enc
    bad = bytearray(blob)
    bad[HDR + segment * SEG + offset] ^= 0x10
    with pytest.raises(c4gh.SegmentAuthError, match=f"data segment {segment} failed") as ei:
        _decrypt(tmp_path, bytes(bad), kp[0], res)
    assert ei.value.index == segment
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("offset", [0, 9, 13, 17, 20, 30, 60, 80, 123])
def test_flipped_bit_in_header(tmp_path, kp, enc, offset):
    _, res, blob = enc
    bad = bytearray(blob)
    bad[offset] ^= 0x01
    _assert_fails(tmp_path, bytes(bad), kp[0], res, c4gh.C4GHError)


def test_flipped_bit_in_header_packet_is_no_matching_key(tmp_path, kp, enc):
    _, res, blob = enc
    bad = bytearray(blob)
    bad[HDR - 5] ^= 0x01  # inside the packet MAC
    _assert_fails(tmp_path, bytes(bad), kp[0], res, c4gh.NoMatchingKeyError,
                  "no header packet is addressed to this key")


def test_truncated_mid_segment(tmp_path, kp, enc):
    _, res, blob = enc
    _assert_fails(tmp_path, blob[: HDR + 2 * SEG + 1000], kp[0], res, c4gh.SegmentAuthError)
    _assert_fails(tmp_path, blob[: HDR + 2 * SEG + 10], kp[0], res, c4gh.TruncatedError,
                  "truncated")
    # with the stored size known the message says so
    _assert_fails(tmp_path, blob[: HDR + 2 * SEG + 1000], kp[0], res, c4gh.TruncatedError,
                  "truncated data", expected_stored_size=res.stored_size)


def test_truncated_at_segment_boundary(tmp_path, kp, enc):
    _, res, blob = enc
    _assert_fails(tmp_path, blob[: HDR + 3 * SEG], kp[0], res, c4gh.ChecksumMismatchError,
                  "SHA-256 mismatch")
    _assert_fails(tmp_path, blob[: HDR + 3 * SEG], kp[0], res, c4gh.TruncatedError,
                  r"3 of 5 segments", expected_stored_size=res.stored_size)


def test_truncated_inside_header(tmp_path, kp, enc):
    _, res, blob = enc
    _assert_fails(tmp_path, blob[:60], kp[0], res, c4gh.HeaderError, "truncated")


def test_dropped_segment(tmp_path, kp, enc):
    _, res, blob = enc
    body = blob[HDR:]
    dropped = blob[:HDR] + body[:SEG] + body[2 * SEG :]
    _assert_fails(tmp_path, dropped, kp[0], res, c4gh.ChecksumMismatchError, "SHA-256 mismatch")


def test_reordered_segments(tmp_path, kp, enc):
    _, res, blob = enc
    body = blob[HDR:]
    swapped = blob[:HDR] + body[SEG : 2 * SEG] + body[:SEG] + body[2 * SEG :]
    _assert_fails(tmp_path, swapped, kp[0], res, c4gh.ChecksumMismatchError, "reordered")


def test_wrong_key(tmp_path, enc):
    _, res, blob = enc
    other_sk, _ = c4gh.generate_keypair()
    _assert_fails(tmp_path, blob, other_sk, res, c4gh.NoMatchingKeyError,
                  "no header packet is addressed to this key")


def test_unknown_packet_type(tmp_path, kp, enc):
    import struct

    from c4gh import header as hdr

    _, res, blob = enc
    h = hdr._build([struct.pack("<I", 42)], [kp[1]], None)
    _assert_fails(tmp_path, h + blob[HDR:], kp[0], res, c4gh.UnknownPacketTypeError, "type 42")


def test_wrong_expected_size(tmp_path, kp, enc):
    data, res, blob = enc
    _assert_fails(tmp_path, blob, kp[0], res, c4gh.SizeMismatchError, "expected",
                  expected_size=len(data) + 1)


def test_compressed_truncation_detected_without_checksum(tmp_path, kp):
    data = b"@r\nACGTACGTAC\n+\nIIIIIIIIII\n" * 200_000 + os.urandom(300_000)
    blob, res = c4gh.encrypt_bytes(data, [kp[1]])
    assert res.compressed and res.segments >= 2
    cut = blob[: HDR + (res.segments - 1) * SEG]
    with pytest.raises((c4gh.TruncatedError, c4gh.DecompressionError)):
        c4gh.decrypt_bytes(cut, kp[0], compressed=True)


def test_streaming_decryptor_raises_at_end(kp, enc):
    _, res, blob = enc
    body = blob[HDR:]
    swapped = body[SEG : 2 * SEG] + body[:SEG] + body[2 * SEG :]
    dec = c4gh.Decryptor(header=blob[:HDR], reader_sk=kp[0], expected_sha256=res.sha256)
    with pytest.raises(c4gh.ChecksumMismatchError):
        for _ in dec.stream([swapped[i : i + 50_000] for i in range(0, len(swapped), 50_000)]):
            pass
