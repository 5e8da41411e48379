"""Users and projects with real keys (RSA-2048 and cheap Argon2 from test settings)."""

from __future__ import annotations

import secrets

from accounts.models import Role
from accounts.services import user_create
from keys.services import user_kek_derive


def keyed_user(role=Role.RESEARCHER, unit=None, username=None):
    """A user with a key pair; returns (user, password, kek)."""
    username = username or f"k{secrets.token_hex(4)}"
    password = "Pw-" + secrets.token_urlsafe(12)
    user = user_create(username=username, email=f"{username}@example.org", name=username,
                       password=password, role=role, unit=unit)
    return user, password, user_kek_derive(user=user, password=password)
