"""Crypt4GH v1 header: X25519 key helpers, packet encryption, build / parse / re-encrypt.

Layout (all integers little-endian)::

    b"crypt4gh" | version u32 = 1 | packet count u32 | packets...
    packet = length u32 (incl. itself) | method u32 (0 = X25519+ChaCha20-Poly1305)
             | writer X25519 public key (32) | nonce (12) | ciphertext | MAC (16)

The packet key is the first 32 bytes of BLAKE2b-512(DH || reader_pk || writer_pk); this is
libsodium's ``crypto_kx`` (writer = server, reader = client), which is what the reference
implementation uses, so headers interoperate in both directions.

Decrypted payloads: type u32 0 = data encryption parameters (method u32 0 = ChaCha20-IETF-
Poly1305, 32-byte session key); type 1 = data edit list (count u32, count x u64 lengths).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .errors import (
    HeaderError,
    NoMatchingKeyError,
    UnknownPacketTypeError,
    UnsupportedMethodError,
)

MAGIC = b"crypt4gh"
VERSION = 1
PREAMBLE_SIZE = 16  # magic + version + packet count

PACKET_METHOD_X25519_CHACHA20 = 0
DATA_METHOD_CHACHA20_POLY1305 = 0
PACKET_TYPE_DATA_ENC = 0
PACKET_TYPE_EDIT_LIST = 1

KEY_SIZE = 32
NONCE_SIZE = 12
MAC_SIZE = 16
#: Size of one encrypted packet carrying a data key: len+method+pk+nonce+(4+4+32)+mac.
DATA_KEY_PACKET_SIZE = 4 + 4 + KEY_SIZE + NONCE_SIZE + (4 + 4 + KEY_SIZE) + MAC_SIZE  # 108
#: Header size for one data key addressed to one recipient (what the DB stores).
SINGLE_RECIPIENT_HEADER_SIZE = PREAMBLE_SIZE + DATA_KEY_PACKET_SIZE  # 124
#: Refuse absurd headers early (a header is a few packets of ~100 bytes).
MAX_PACKETS = 1024
MAX_PACKET_LEN = 1 << 20

_U32 = struct.Struct("<I")

#: Any bytes-like input (parsed through memoryviews, not copied).
Bytes = bytes | bytearray | memoryview


# --------------------------------------------------------------------------- key helpers


def generate_keypair() -> tuple[bytes, bytes]:
    """Return a fresh X25519 key pair as raw ``(private32, public32)`` bytes."""
    sk = X25519PrivateKey.generate()
    return (
        sk.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


def derive_public_key(private_key: bytes) -> bytes:
    """Raw 32-byte X25519 public key for a raw 32-byte private key."""
    _check_key(private_key, "private key")
    return (
        X25519PrivateKey.from_private_bytes(private_key)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        raise ValueError(f"X25519 {what} must be {KEY_SIZE} raw bytes")


def _dh(private_key: bytes, public_key: bytes) -> bytes:
    try:
        return X25519PrivateKey.from_private_bytes(private_key).exchange(
            X25519PublicKey.from_public_bytes(public_key)
        )
    except ValueError as exc:  # low-order point -> all-zero secret
        raise NoMatchingKeyError(f"X25519 key exchange failed: {exc}") from exc


def _packet_key(dh: bytes, reader_pk: bytes, writer_pk: bytes) -> bytes:
    return hashlib.blake2b(dh + reader_pk + writer_pk, digest_size=64).digest()[:KEY_SIZE]


# --------------------------------------------------------------------------- packets


def _encrypt_packet(payload: bytes, writer_sk: bytes, writer_pk: bytes, reader_pk: bytes) -> bytes:
    _check_key(reader_pk, "recipient public key")
    key = _packet_key(_dh(writer_sk, reader_pk), reader_pk, writer_pk)
    nonce = os.urandom(NONCE_SIZE)
    body = (
        _U32.pack(PACKET_METHOD_X25519_CHACHA20)
        + writer_pk
        + nonce
        + ChaCha20Poly1305(key).encrypt(nonce, payload, None)
    )
    return _U32.pack(len(body) + 4) + body


def _decrypt_packet(body: bytes, reader_sk: bytes, reader_pk: bytes) -> bytes | None:
    """Decrypt one packet body (without its length); ``None`` if not addressed to us."""
    if len(body) < 4 + KEY_SIZE + NONCE_SIZE + MAC_SIZE:
        raise HeaderError(f"header packet too short ({len(body) + 4} bytes)")
    (method,) = _U32.unpack_from(body)
    if method != PACKET_METHOD_X25519_CHACHA20:
        return None  # e.g. AES-256-GCM packets for other readers: not for us
    writer_pk = body[4 : 4 + KEY_SIZE]
    nonce = body[4 + KEY_SIZE : 4 + KEY_SIZE + NONCE_SIZE]
    try:
        key = _packet_key(_dh(reader_sk, writer_pk), reader_pk, writer_pk)
        return ChaCha20Poly1305(key).decrypt(nonce, body[4 + KEY_SIZE + NONCE_SIZE :], None)
    except (InvalidTag, NoMatchingKeyError):
        return None


def data_key_payload(session_key: bytes) -> bytes:
    """Plain payload of a 'data encryption parameters' packet."""
    if len(session_key) != KEY_SIZE:
        raise ValueError("session key must be 32 bytes")
    return _U32.pack(PACKET_TYPE_DATA_ENC) + _U32.pack(DATA_METHOD_CHACHA20_POLY1305) + session_key


def edit_list_payload(edit_list: list[int]) -> bytes:
    """Plain payload of a 'data edit list' packet (lengths alternate skip, keep, ...)."""
    if any(n < 0 for n in edit_list):
        raise ValueError("edit list lengths must be non-negative")
    return (
        _U32.pack(PACKET_TYPE_EDIT_LIST)
        + _U32.pack(len(edit_list))
        + b"".join(struct.pack("<Q", n) for n in edit_list)
    )


# --------------------------------------------------------------------------- header


@dataclass
class HeaderInfo:
    """What a reader learns from a header.

    ``session_keys``: data keys (usually one); ``edit_list``: skip/keep lengths or ``None``;
    ``header_len``: bytes consumed, i.e. where the data segments start;
    ``undecryptable``: raw packets addressed to other readers (kept by re-encryption).
    """

    session_keys: list[bytes]
    edit_list: list[int] | None
    header_len: int
    undecryptable: list[bytes] = field(default_factory=list, repr=False)


def serialize_packets(packets: list[bytes]) -> bytes:
    """Preamble + already length-prefixed packets."""
    if not packets:
        raise ValueError("a Crypt4GH header needs at least one packet")
    return MAGIC + _U32.pack(VERSION) + _U32.pack(len(packets)) + b"".join(packets)


def encrypt_header(
    session_key: bytes | list[bytes],
    recipients: list[bytes],
    writer_sk: bytes | None = None,
    edit_list: list[int] | None = None,
) -> bytes:
    """Build a header giving ``session_key`` (and optional edit list) to every recipient.

    ``recipients`` are raw 32-byte X25519 public keys. ``writer_sk`` defaults to a fresh
    ephemeral key, which is what we want: the writer never needs to read the file back, and
    an ephemeral key leaks nothing about who wrote it. One recipient, no edit list -> 124 bytes.
    """
    if not recipients:
        raise ValueError("at least one recipient public key is required")
    keys = [session_key] if isinstance(session_key, (bytes, bytearray)) else list(session_key)
    payloads = [data_key_payload(bytes(k)) for k in keys]
    if edit_list is not None:
        payloads.append(edit_list_payload(edit_list))
    return _build(payloads, recipients, writer_sk)


def _build(payloads: list[bytes], recipients: list[bytes], writer_sk: bytes | None) -> bytes:
    if writer_sk is None:
        writer_sk, writer_pk = generate_keypair()
    else:
        writer_pk = derive_public_key(writer_sk)
    packets = [
        _encrypt_packet(p, writer_sk, writer_pk, bytes(pk)) for pk in recipients for p in payloads
    ]
    return serialize_packets(packets)


def split_packets(data: Bytes) -> tuple[list[bytes], int]:
    """Validate the preamble and return (packet bodies without length prefix, header length).

    ``data`` may contain more than the header (e.g. a whole file's first bytes).
    """
    mv = memoryview(data)
    if len(mv) < PREAMBLE_SIZE:
        raise HeaderError(f"header too short: {len(mv)} bytes, need at least {PREAMBLE_SIZE}")
    if bytes(mv[:8]) != MAGIC:
        raise HeaderError("not a Crypt4GH file: bad magic bytes")
    (version,) = _U32.unpack_from(mv, 8)
    if version != VERSION:
        raise HeaderError(f"unsupported Crypt4GH version {version} (only 1 is supported)")
    (count,) = _U32.unpack_from(mv, 12)
    if count == 0 or count > MAX_PACKETS:
        raise HeaderError(f"invalid header packet count {count}")
    pos = PREAMBLE_SIZE
    bodies = []
    for i in range(count):
        if pos + 4 > len(mv):
            raise HeaderError(f"header truncated in packet {i}")
        (plen,) = _U32.unpack_from(mv, pos)
        if plen < 4 + 4 + KEY_SIZE + NONCE_SIZE + MAC_SIZE or plen > MAX_PACKET_LEN:
            raise HeaderError(f"invalid length {plen} of header packet {i}")
        if pos + plen > len(mv):
            raise HeaderError(f"header truncated in packet {i}")
        bodies.append(bytes(mv[pos + 4 : pos + plen]))
        pos += plen
    return bodies, pos


def header_length(data: Bytes) -> int:
    """Length of the header at the start of ``data`` (no decryption)."""
    return split_packets(data)[1]


def _decrypt_all(data: bytes, reader_sk: bytes) -> tuple[list[bytes], list[bytes], int]:
    _check_key(reader_sk, "private key")
    reader_pk = derive_public_key(reader_sk)
    bodies, hlen = split_packets(data)
    mine, others = [], []
    for body in bodies:
        plain = _decrypt_packet(body, reader_sk, reader_pk)
        if plain is None:
            others.append(body)
        else:
            mine.append(plain)
    if not mine:
        raise NoMatchingKeyError(
            "no header packet is addressed to this key (wrong key, or header corrupted)"
        )
    return mine, others, hlen


def _interpret(payloads: list[bytes]) -> tuple[list[bytes], list[int] | None]:
    session_keys: list[bytes] = []
    edit_list: list[int] | None = None
    for p in payloads:
        if len(p) < 4:
            raise HeaderError("decrypted header packet is too short")
        (ptype,) = _U32.unpack_from(p)
        if ptype == PACKET_TYPE_DATA_ENC:
            if len(p) != 4 + 4 + KEY_SIZE:
                raise HeaderError(f"data encryption packet has wrong size {len(p)}")
            (method,) = _U32.unpack_from(p, 4)
            if method != DATA_METHOD_CHACHA20_POLY1305:
                raise UnsupportedMethodError(f"unsupported data encryption method {method}")
            session_keys.append(p[8:])
        elif ptype == PACKET_TYPE_EDIT_LIST:
            if edit_list is not None:
                raise HeaderError("more than one edit list packet addressed to this key")
            if len(p) < 8:
                raise HeaderError("edit list packet is too short")
            (n,) = _U32.unpack_from(p, 4)
            if len(p) < 8 + 8 * n:
                raise HeaderError(f"edit list announces {n} lengths but is too short")
            edit_list = list(struct.unpack_from(f"<{n}Q", p, 8))
        else:
            raise UnknownPacketTypeError(ptype)
    if not session_keys:
        raise HeaderError("no data encryption parameters packet is addressed to this key")
    return session_keys, edit_list


def parse_header(data: bytes, reader_sk: bytes) -> HeaderInfo:
    """Decrypt the header at the start of ``data`` with the reader's raw X25519 private key.

    Packets for other readers are skipped. Raises :class:`NoMatchingKeyError` if none is
    ours, :class:`UnknownPacketTypeError` / :class:`HeaderError` on bad content.
    """
    mine, others, hlen = _decrypt_all(data, reader_sk)
    keys, edit_list = _interpret(mine)
    return HeaderInfo(keys, edit_list, hlen, others)


def reencrypt_header(
    header: bytes,
    reader_sk: bytes,
    new_recipient_pks: list[bytes],
    *,
    keep_others: bool = False,
) -> bytes:
    """Re-address a header to new recipients without touching the data segments.

    The packets readable with ``reader_sk`` are decrypted, validated, and re-encrypted for
    every key in ``new_recipient_pks`` with a fresh ephemeral writer key. Packets for other
    readers are dropped unless ``keep_others`` (dropping is the safe default: the result is
    addressed exactly to the listed keys). Only the header bytes may be passed.
    """
    if not new_recipient_pks:
        raise ValueError("at least one new recipient public key is required")
    mine, others, hlen = _decrypt_all(header, reader_sk)
    if hlen != len(header):
        raise HeaderError(f"trailing bytes after the header ({len(header) - hlen} bytes)")
    _interpret(mine)  # refuse to propagate unknown packet types
    new = _build(mine, new_recipient_pks, None)
    if keep_others and others:
        extra = [_U32.pack(len(b) + 4) + b for b in others]
        bodies, _ = split_packets(new)
        packets = [_U32.pack(len(b) + 4) + b for b in bodies] + extra
        return serialize_packets(packets)
    return new
