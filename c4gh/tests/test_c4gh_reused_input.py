"""Decryption from views of one buffer that is refilled after each chunk (as `dds data
get` receives with ``recv_into``): what the engine keeps of a chunk it must copy."""

import hashlib
import os

import pytest

import c4gh


@pytest.fixture(scope="module")
def kp():
    return c4gh.generate_keypair()


def _reused_views(data: bytes, sizes: list[int]):
    buf = bytearray(max(sizes))
    pos, i = 0, 0
    while pos < len(data):
        n = min(sizes[i % len(sizes)], len(data) - pos)
        buf[:n] = data[pos : pos + n]
        yield memoryview(buf)[:n]
        buf[:] = b"\xaa" * len(buf)  # scribbled over once the engine asked for more
        pos, i = pos + n, i + 1


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("sizes", [[c4gh.CIPHER_SEGMENT_SIZE * 3],
                                   [1000, 70_001, 5 * c4gh.CIPHER_SEGMENT_SIZE - 3], [7]])
@pytest.mark.parametrize("with_header", [False, True])
def test_run_copies_what_it_keeps_of_a_reused_buffer(kp, compress, sizes, with_header):
    sk, pk = kp
    plain = os.urandom(300_000) + b"ACGT" * 100_000
    whole, res = c4gh.encrypt_bytes(plain, [pk], compress=compress)
    hlen = c4gh.header_length(whole)
    if with_header:
        dec = c4gh.Decryptor(reader_sk=sk, compressed=res.compressed,
                             expected_sha256=hashlib.sha256(plain).hexdigest())
        data = whole
    else:
        dec = c4gh.Decryptor(header=whole[:hlen], reader_sk=sk, compressed=res.compressed,
                             expected_sha256=hashlib.sha256(plain).hexdigest(),
                             expected_size=len(plain), expected_stored_size=len(whole) - hlen)
        data = whole[hlen:]
    out = bytearray()
    dec.run(_reused_views(data, sizes), out.extend)
    assert bytes(out) == plain and dec.sha256 == hashlib.sha256(plain).hexdigest()
