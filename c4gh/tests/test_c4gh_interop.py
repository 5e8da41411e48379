"""Interoperability with the reference ``crypt4gh`` package (library, CLI and key files)."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import c4gh

# A missing reference is a failure, not a skip: interoperability is what these prove.
MISSING = ("the reference crypt4gh package is not installed in this virtualenv: "
           "pip install -r requirements-dev.txt")
try:
    from crypt4gh import header as ref_header
    from crypt4gh import lib as ref_lib
    from crypt4gh.keys import c4gh as ref_c4gh
    from crypt4gh.keys import get_private_key, get_public_key
except ImportError as exc:
    raise ImportError(MISSING) from exc

DATA = os.urandom(3 * 65536 + 1234)
FASTQ = b"@r1 1:N:0\nACGTTGCAACGTAAGG\n+\nIIIIIIIIFFFF::,,\n" * 20_000


@pytest.fixture(scope="module")
def kp():
    return c4gh.generate_keypair()


def ref_encrypt(data, recipient_pk):
    out = io.BytesIO()
    writer_sk, _ = c4gh.generate_keypair()
    ref_lib.encrypt([(0, writer_sk, recipient_pk)], io.BytesIO(data), out)
    return out.getvalue()


def ref_decrypt(blob, sk):
    out = io.BytesIO()
    ref_lib.decrypt([(0, sk, None)], io.BytesIO(blob), out)
    return out.getvalue()


def test_ours_decrypts_with_reference_uncompressed(kp):
    blob, res = c4gh.encrypt_bytes(DATA, [kp[1]])
    assert res.compressed is False
    assert ref_decrypt(blob, kp[0]) == DATA


def test_ours_compressed_decrypts_to_zstd_with_reference(kp):
    blob, res = c4gh.encrypt_bytes(FASTQ, [kp[1]])
    assert res.compressed is True
    zst = ref_decrypt(blob, kp[0])
    assert zst[:4] == b"\x28\xb5\x2f\xfd"  # by design: the reference yields our zstd stream
    assert zstandard.ZstdDecompressor().decompressobj().decompress(zst) == FASTQ


def test_reference_decrypts_with_ours(kp):
    blob = ref_encrypt(DATA, kp[1])
    assert c4gh.decrypt_bytes(blob, kp[0]) == DATA
    info = c4gh.parse_header(blob, kp[0])
    assert info.header_len == 124


def test_reference_reencrypts_our_header(kp):
    blob, res = c4gh.encrypt_bytes(DATA, [kp[1]])
    new_sk, new_pk = c4gh.generate_keypair()
    packets = list(ref_header.parse(io.BytesIO(res.header)))
    new_packets = ref_header.reencrypt(packets, [(0, kp[0], None)], [(0, new_sk, new_pk)])
    new_header = ref_header.serialize(new_packets)
    assert c4gh.decrypt_bytes(new_header + blob[124:], new_sk, expected_sha256=res.sha256) == DATA


def test_our_reencryption_of_reference_header(kp):
    blob = ref_encrypt(DATA, kp[1])
    hlen = c4gh.header_length(blob)
    new_sk, new_pk = c4gh.generate_keypair()
    h2 = c4gh.reencrypt_header(blob[:hlen], kp[0], [new_pk])
    assert ref_decrypt(h2 + blob[hlen:], new_sk) == DATA


def test_reference_keyfile_loads_in_ours(tmp_path, kp):
    sec, pub = tmp_path / "ref.sec", tmp_path / "ref.pub"
    ref_c4gh.generate(str(sec), str(pub), passphrase=b"correct horse", comment=b"me")
    sk = c4gh.load_private_key(sec.read_bytes(), "correct horse")
    assert c4gh.derive_public_key(sk) == c4gh.load_public_key(pub.read_bytes())
    assert sk == get_private_key(str(sec), lambda: "correct horse")
    with pytest.raises(c4gh.KeyFileError, match="wrong passphrase"):
        c4gh.load_private_key(sec.read_bytes(), "wrong")
    # unencrypted reference key
    ref_c4gh.generate(str(tmp_path / "p.sec"), str(tmp_path / "p.pub"), passphrase=None,
                      comment=None)
    sk2 = c4gh.load_private_key((tmp_path / "p.sec").read_bytes())
    assert c4gh.derive_public_key(sk2) == c4gh.load_public_key((tmp_path / "p.pub").read_bytes())


def test_our_keyfile_loads_in_reference(tmp_path, kp):
    c4gh.write_keypair(kp[0], tmp_path / "k.sec", tmp_path / "k.pub", "s3cret", comment="dds")
    assert (tmp_path / "k.sec").stat().st_mode & 0o777 == 0o600
    assert get_private_key(str(tmp_path / "k.sec"), lambda: "s3cret") == kp[0]
    assert get_public_key(str(tmp_path / "k.pub")) == kp[1]
    assert c4gh.load_private_key((tmp_path / "k.sec").read_bytes(), b"s3cret") == kp[0]
    text = (tmp_path / "k.sec").read_text()
    assert text.startswith("-----BEGIN CRYPT4GH ENCRYPTED PRIVATE KEY-----\n")
    assert (tmp_path / "k.pub").read_text().startswith("-----BEGIN CRYPT4GH PUBLIC KEY-----\n")


def test_reference_cli_with_our_files(tmp_path, kp):
    cli = Path(sys.executable).parent / "crypt4gh"
    if not cli.exists():
        cli = shutil.which("crypt4gh")
    if not cli:
        pytest.fail(f"the crypt4gh command is neither next to {sys.executable} nor on PATH: "
                    "pip install -r requirements-dev.txt", pytrace=False)
    c4gh.write_keypair(kp[0], tmp_path / "k.sec", tmp_path / "k.pub", "pw")
    src = tmp_path / "data.bin"
    src.write_bytes(DATA)
    res = c4gh.encrypt_file(src, tmp_path / "data.c4gh", [kp[1]])
    env = dict(os.environ, C4GH_PASSPHRASE="pw")
    with open(tmp_path / "data.c4gh", "rb") as fin, open(tmp_path / "out.bin", "wb") as fout:
        subprocess.run([str(cli), "decrypt", "--sk", str(tmp_path / "k.sec")], stdin=fin,
                       stdout=fout, env=env, check=True)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    # and the other way: their CLI encrypts to our public key file
    with open(src, "rb") as fin, open(tmp_path / "ref.c4gh", "wb") as fout:
        subprocess.run([str(cli), "encrypt", "--recipient_pk", str(tmp_path / "k.pub")],
                       stdin=fin, stdout=fout, env=env, check=True)
    c4gh.decrypt_file(tmp_path / "ref.c4gh", tmp_path / "ours.bin", kp[0],
                      expected_sha256=res.sha256)
    assert (tmp_path / "ours.bin").read_bytes() == DATA
