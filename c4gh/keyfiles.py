"""Crypt4GH key files, compatible with the reference ``crypt4gh`` / ``crypt4gh-keygen`` tools.

Public key: PEM-like armour around base64 of the raw 32-byte X25519 public key::

    -----BEGIN CRYPT4GH PUBLIC KEY-----
    <base64>
    -----END CRYPT4GH PUBLIC KEY-----

Private key: armour ``CRYPT4GH ENCRYPTED PRIVATE KEY`` (we write this label for
passphrase-protected keys and ``CRYPT4GH PRIVATE KEY`` for unprotected ones; both labels are
read, and the reference tool reads any label) around base64 of::

    b"c4gh-v1" | string(kdf name) | [string(rounds u32 BE || salt) if kdf != none]
              | string(cipher name) | string(blob) | [string(comment)]

where ``string(x)`` is a 2-byte big-endian length followed by ``x``. With kdf ``none`` and
cipher ``none`` the blob is the raw private key; otherwise cipher is ``chacha20_poly1305``
and blob = nonce(12) || ChaCha20-Poly1305(kdf(passphrase, salt), private key) (no AAD).
KDFs: ``scrypt`` (N=2**14, r=8, p=1, 32 bytes; rounds ignored), ``bcrypt`` (bcrypt-pbkdf
with ``rounds``), ``pbkdf2_hmac_sha256`` (``rounds`` iterations). We write scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .errors import KeyFileError
from .header import KEY_SIZE, derive_public_key

KEY_MAGIC = b"c4gh-v1"
PUBLIC_LABEL = "CRYPT4GH PUBLIC KEY"
PRIVATE_LABEL = "CRYPT4GH PRIVATE KEY"
ENCRYPTED_PRIVATE_LABEL = "CRYPT4GH ENCRYPTED PRIVATE KEY"
PRIVATE_LABELS = (PRIVATE_LABEL, ENCRYPTED_PRIVATE_LABEL)
SCRYPT_SALT_SIZE = 16


def _armor(label: str, payload: bytes) -> bytes:
    return (
        f"-----BEGIN {label}-----\n".encode()
        + base64.b64encode(payload)
        + f"\n-----END {label}-----\n".encode()
    )


def _dearmor(data: bytes | str, labels: tuple[str, ...]) -> bytes:
    text = data.decode("ascii", "replace") if isinstance(data, (bytes, bytearray)) else data
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 3:
        raise KeyFileError("not a Crypt4GH key file (missing armour lines)")
    first, last = lines[0], lines[-1]
    for label in labels:
        if first == f"-----BEGIN {label}-----" and last == f"-----END {label}-----":
            try:
                return base64.b64decode("".join(lines[1:-1]), validate=True)
            except ValueError as exc:
                raise KeyFileError(f"invalid base64 in {label}") from exc
    raise KeyFileError(f"not a Crypt4GH key file (expected {' or '.join(labels)})")


def _s(x: bytes) -> bytes:
    return struct.pack(">H", len(x)) + x


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 2 > len(self.data):
            raise KeyFileError("truncated Crypt4GH private key")
        (n,) = struct.unpack_from(">H", self.data, self.pos)
        self.pos += 2
        if self.pos + n > len(self.data):
            raise KeyFileError("truncated Crypt4GH private key")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def more(self) -> bool:
        return self.pos < len(self.data)


def _kdf(name: bytes, passphrase: bytes, salt: bytes, rounds: int) -> bytes:
    if name == b"scrypt":
        return hashlib.scrypt(passphrase, salt=salt, n=1 << 14, r=8, p=1, dklen=32)
    if name == b"bcrypt":
        try:
            import bcrypt  # noqa: PLC0415 - optional: only bcrypt-protected key files need it
        except ImportError as exc:  # pragma: no cover - bcrypt is optional
            raise KeyFileError("bcrypt-protected key needs the 'bcrypt' package") from exc
        return bcrypt.kdf(passphrase, salt=salt, desired_key_bytes=32, rounds=rounds,
                          ignore_few_rounds=True)
    if name == b"pbkdf2_hmac_sha256":
        return hashlib.pbkdf2_hmac("sha256", passphrase, salt, rounds, dklen=32)
    raise KeyFileError(f"unsupported key derivation function {name.decode(errors='replace')}")


# --------------------------------------------------------------------------- public keys


def export_public_key(public_key: bytes) -> bytes:
    """Armoured Crypt4GH public key file content."""
    if len(public_key) != KEY_SIZE:
        raise ValueError("public key must be 32 bytes")
    return _armor(PUBLIC_LABEL, bytes(public_key))


def load_public_key(data: bytes | str) -> bytes:
    """Raw 32-byte key from an armoured Crypt4GH public key file content."""
    raw = _dearmor(data, (PUBLIC_LABEL,))
    if len(raw) != KEY_SIZE:
        raise KeyFileError(f"Crypt4GH public key must be 32 bytes, got {len(raw)}")
    return raw


# --------------------------------------------------------------------------- private keys


def export_private_key(
    private_key: bytes, passphrase: str | bytes | None, comment: str | bytes | None = None
) -> bytes:
    """Armoured Crypt4GH private key, scrypt + ChaCha20-Poly1305 protected.

    ``passphrase=None`` (or empty) writes an unencrypted key (kdf/cipher ``none``), as the
    reference tool does; callers should only do that for throw-away keys.
    """
    if len(private_key) != KEY_SIZE:
        raise ValueError("private key must be 32 bytes")
    if isinstance(comment, str):
        comment = comment.encode()
    tail = _s(comment) if comment else b""
    if not passphrase:
        payload = KEY_MAGIC + _s(b"none") + _s(b"none") + _s(bytes(private_key)) + tail
        return _armor(PRIVATE_LABEL, payload)
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    salt = os.urandom(SCRYPT_SALT_SIZE)
    key = _kdf(b"scrypt", passphrase, salt, 0)
    nonce = os.urandom(12)
    blob = nonce + ChaCha20Poly1305(key).encrypt(nonce, bytes(private_key), None)
    payload = (
        KEY_MAGIC
        + _s(b"scrypt")
        + _s(struct.pack(">I", 0) + salt)
        + _s(b"chacha20_poly1305")
        + _s(blob)
        + tail
    )
    return _armor(ENCRYPTED_PRIVATE_LABEL, payload)


def load_private_key(data: bytes | str, passphrase: str | bytes | None = None) -> bytes:
    """Raw 32-byte X25519 private key from a Crypt4GH private key file content.

    Raises :class:`KeyFileError` for a malformed file, a missing passphrase or a wrong one.
    """
    raw = _dearmor(data, PRIVATE_LABELS)
    if not raw.startswith(KEY_MAGIC):
        raise KeyFileError("not a Crypt4GH private key (bad magic; OpenSSH keys unsupported)")
    r = _Reader(raw)
    r.pos = len(KEY_MAGIC)
    kdf = r.string()
    salt, rounds = b"", 0
    if kdf != b"none":
        opts = r.string()
        if len(opts) < 4:
            raise KeyFileError("invalid KDF options in Crypt4GH private key")
        (rounds,) = struct.unpack(">I", opts[:4])
        salt = opts[4:]
    cipher = r.string()
    blob = r.string()
    if cipher == b"none":
        if kdf != b"none":
            raise KeyFileError("invalid Crypt4GH private key (kdf without cipher)")
        key = blob
    elif cipher == b"chacha20_poly1305":
        if kdf == b"none":
            raise KeyFileError("invalid Crypt4GH private key (cipher without kdf)")
        if not passphrase:
            raise KeyFileError("this Crypt4GH private key is encrypted: a passphrase is needed")
        if isinstance(passphrase, str):
            passphrase = passphrase.encode()
        if len(blob) < 12 + 16:
            raise KeyFileError("truncated encrypted private key")
        k = _kdf(kdf, passphrase, salt, rounds)
        try:
            key = ChaCha20Poly1305(k).decrypt(blob[:12], blob[12:], None)
        except InvalidTag as exc:
            raise KeyFileError("wrong passphrase for the Crypt4GH private key") from exc
    else:
        raise KeyFileError(f"unsupported private key cipher {cipher.decode(errors='replace')}")
    if len(key) != KEY_SIZE:
        raise KeyFileError(f"private key must be 32 bytes, got {len(key)}")
    return key


def write_keypair(
    private_key: bytes,
    seckey_path: str | os.PathLike[str],
    pubkey_path: str | os.PathLike[str],
    passphrase: str | bytes | None,
    comment: str | None = None,
) -> None:
    """Write both key files; the private one is created with mode 0600."""
    fd = os.open(seckey_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(export_private_key(private_key, passphrase, comment))
    with open(pubkey_path, "wb") as f:
        f.write(export_public_key(derive_public_key(private_key)))
