"""Sealing small secrets at rest under a server key.

Used for what the server must be able to read back but a database dump must not reveal:
storage credentials, session keys, authenticator (TOTP) keys, queued emails. Values the
server only has to *recognise* (pending email codes) get a keyed hash instead.
AES-256-GCM with the purpose as associated data, so a value sealed for one purpose cannot
be replayed as another.
The key comes from DDS_SEALING_KEY, or is derived from SECRET_KEY with HKDF when unset.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_VERSION = b"\x01"


class SealError(Exception):
    """A sealed value could not be opened (wrong server key, wrong purpose, tampered)."""


def _server_key() -> bytes:
    material = (settings.DDS_SEALING_KEY or settings.SECRET_KEY).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dds-sealing-v1").derive(material)


def seal(plaintext: bytes, *, purpose: str) -> bytes:
    nonce = os.urandom(12)
    return _VERSION + nonce + AESGCM(_server_key()).encrypt(nonce, plaintext, purpose.encode())


def unseal(sealed: bytes, *, purpose: str) -> bytes:
    sealed = bytes(sealed)
    if len(sealed) < 29 or sealed[:1] != _VERSION:
        raise SealError("sealed value is malformed")
    try:
        return AESGCM(_server_key()).decrypt(sealed[1:13], sealed[13:], purpose.encode())
    except InvalidTag as exc:
        raise SealError("sealed value cannot be opened with this server key") from exc


def keyed_hash(value: bytes, *, purpose: str) -> str:
    """HMAC-SHA256 under a purpose-bound server key, hex: a dump cannot test guesses."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"dds-keyed-hash-v1:" + purpose.encode()).derive(_server_key())
    return hmac.new(key, value, hashlib.sha256).hexdigest()
