"""Key-management primitives for DDS (pure Python, no Django).

The key hierarchy, and why each layer exists:

* **Project key** - an X25519 key pair per project. Data is Crypt4GH-encrypted to the
  project's public key, so uploads need no secret at all.
* **User key** - an RSA key pair per user. The project private key is given to each
  member by encrypting it to the member's RSA public key (RSA-OAEP-SHA256). Granting
  access is therefore possible for anyone holding the project key, without the new
  member's password, and revoking it is deleting one row.
* **KEK** - a key-encryption key derived from the user's password with Argon2id
  (memory-hard, so stolen database rows cannot be brute-forced cheaply on GPUs). It wraps
  the user's RSA private key with AES-256-GCM; the username is bound as associated data so
  a wrapped key copied onto another account does not unwrap. A password change re-wraps
  the same RSA key (keys.services.user_keys_rewrap): project grants stay valid.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_SIZE = 32
SALT_SIZE = 32
GCM_NONCE_SIZE = 12
DEFAULT_RSA_BITS = 4096
#: Domain separation for the AAD of wrapped user keys (bumped if the format changes).
_WRAP_CONTEXT = b"dds-user-private-key-v1:"


class KeyWrapError(Exception):
    """A wrapped key could not be unwrapped (wrong password/KEK, other user, corrupted)."""


# --------------------------------------------------------------------------- Argon2id KEK


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters, stored per user so they can be raised over time.

    Production defaults: 2 passes over 512 MiB with 8 lanes - about a second on a server
    core pair, and the memory size is what makes GPU/ASIC guessing expensive.
    """

    time_cost: int = 2
    memory_cost_kib: int = 524288
    parallelism: int = 8
    algorithm: str = "argon2id"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> KdfParams:
        algorithm = data.get("algorithm", "argon2id")
        if algorithm != "argon2id":
            raise ValueError(f"unsupported KDF algorithm {algorithm!r}")
        return cls(
            time_cost=int(data["time_cost"]),
            memory_cost_kib=int(data["memory_cost_kib"]),
            parallelism=int(data["parallelism"]),
        )


def new_salt() -> bytes:
    """32 random bytes for :func:`derive_kek` (one per user, stored next to the params)."""
    return os.urandom(SALT_SIZE)


def derive_kek(
    password: str,
    salt: bytes,
    *,
    time_cost: int = KdfParams.time_cost,
    memory_cost_kib: int = KdfParams.memory_cost_kib,
    parallelism: int = KdfParams.parallelism,
) -> bytes:
    """Derive the 32-byte key-encryption key from a password with Argon2id."""
    if len(salt) < 16:
        raise ValueError("salt must be at least 16 bytes")
    return hash_secret_raw(
        secret=password.encode("utf-8"),
        salt=salt,
        time_cost=time_cost,
        memory_cost=memory_cost_kib,
        parallelism=parallelism,
        hash_len=KEK_SIZE,
        type=Type.ID,
    )


def derive_kek_with(password: str, salt: bytes, params: KdfParams) -> bytes:
    """:func:`derive_kek` with a stored :class:`KdfParams`."""
    return derive_kek(
        password,
        salt,
        time_cost=params.time_cost,
        memory_cost_kib=params.memory_cost_kib,
        parallelism=params.parallelism,
    )


# --------------------------------------------------------------------------- user RSA keys


def generate_user_keypair(bits: int = DEFAULT_RSA_BITS) -> tuple[bytes, bytes]:
    """New RSA key pair: ``(private key PKCS#8 DER, public key PEM)``.

    4096 bits in production (long-lived keys protecting many project keys); tests may pass
    2048 or 1024 for speed.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    priv = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv, pub


def _aad(username: str) -> bytes:
    return _WRAP_CONTEXT + username.encode("utf-8")


def wrap_private_key(private_der: bytes, kek: bytes, username: str) -> bytes:
    """Encrypt a user's private key under the KEK: returns ``nonce(12) || ciphertext+tag``."""
    if len(kek) != KEK_SIZE:
        raise ValueError("KEK must be 32 bytes")
    nonce = os.urandom(GCM_NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, private_der, _aad(username))


def unwrap_private_key(wrapped: bytes, kek: bytes, username: str) -> bytes:
    """Inverse of :func:`wrap_private_key`; :class:`KeyWrapError` on any mismatch."""
    if len(kek) != KEK_SIZE:
        raise ValueError("KEK must be 32 bytes")
    if len(wrapped) < GCM_NONCE_SIZE + 16:
        raise KeyWrapError("wrapped private key is too short")
    try:
        return AESGCM(kek).decrypt(wrapped[:GCM_NONCE_SIZE], wrapped[GCM_NONCE_SIZE:],
                                   _aad(username))
    except InvalidTag as exc:
        raise KeyWrapError(
            "cannot unwrap the private key: wrong password, wrong user, or corrupted data"
        ) from exc


# --------------------------------------------------------------------------- project keys

_OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


def _load_private(data: bytes) -> rsa.RSAPrivateKey:
    # The key was generated here and comes out of AES-GCM (authenticated under the user's
    # KEK), so OpenSSL's RSA consistency check would only re-prove what the tag already
    # does — at ~300 ms per RSA-4096 load, on every upload complete and download.
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(data, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    else:
        key = serialization.load_der_private_key(data, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def _load_public(data: bytes) -> rsa.RSAPublicKey:
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
    else:
        key = serialization.load_der_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def wrap_project_key(project_sk: bytes, user_public_pem: bytes) -> bytes:
    """Encrypt a project's raw 32-byte X25519 private key to a user's RSA public key."""
    if len(project_sk) != 32:
        raise ValueError("project private key must be 32 bytes")
    return _load_public(user_public_pem).encrypt(project_sk, _OAEP)


def unwrap_project_key(wrapped: bytes, user_private_der: bytes) -> bytes:
    """Decrypt a project key wrapped by :func:`wrap_project_key`."""
    try:
        sk = _load_private(user_private_der).decrypt(wrapped, _OAEP)
    except ValueError as exc:
        raise KeyWrapError("cannot unwrap the project key with this user key") from exc
    if len(sk) != 32:
        raise KeyWrapError("unwrapped project key has the wrong size")
    return sk
