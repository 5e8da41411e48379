"""Users and projects with real keys (RSA-2048 and cheap Argon2 from test settings)."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization

from accounts.models import Role
from accounts.services import user_create
from keys import primitives
from keys.services import user_kek_derive


def keyed_user(role=Role.RESEARCHER, unit=None, username=None):
    """A user with a key pair; returns (user, password, kek)."""
    username = username or f"k{secrets.token_hex(4)}"
    password = "Pw-" + secrets.token_urlsafe(12)
    user = user_create(username=username, email=f"{username}@example.org", name=username,
                       password=password, role=role, unit=unit)
    return user, password, user_kek_derive(user=user, password=password)


def public_key_from_private(private_der: bytes) -> bytes:
    """PEM public key of a DER RSA private key (to check a stored pair belongs together)."""
    key = serialization.load_der_private_key(private_der, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def rewrap_private_key(wrapped: bytes, old_kek: bytes, new_kek: bytes, username: str) -> bytes:
    """What a password change does to the wrapped key: unwrap with the old KEK, wrap anew."""
    return primitives.wrap_private_key(
        primitives.unwrap_private_key(wrapped, old_kek, username), new_kek, username)
