"""Key management services: user keys, project keys, access grants, header re-encryption.

keys sits below accounts and projects: it works on the user, invite and project objects
it is handed and imports neither app (their types only). Which projects a user should
hold keys for is the projects app's rule (projects.services.access).

The server holds no usable secret on its own. Every operation that needs a private key
takes the caller's key-encryption key (KEK) explicitly; the KEK comes from the password at
login and lives only in the caller's sealed key session (accounts.sessions). The rules:

- a user's RSA private key is stored AES-256-GCM-wrapped under the user's KEK;
- a project's X25519 private key is stored once per holder, RSA-OAEP-wrapped to the
  holder's public key (``ProjectUserKey``) or to an invite's key (``InviteProjectKey``);
- granting access means: unlock the project key with the granter's key, wrap it to the
  grantee's public key. Nobody without a holder's password can do it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import c4gh
from core.kdf_limit import kdf_slot
from keys import primitives
from keys.errors import KeyAccessError
from keys.models import InviteProjectKey, ProjectUserKey

if TYPE_CHECKING:  # keys sits below accounts and projects: their types only (docs/architecture.md)
    from accounts.models import Invite, User
    from projects.models import Project

# --------------------------------------------------------------------------- user keys


def kdf_params_current() -> primitives.KdfParams:
    return primitives.KdfParams(time_cost=settings.DDS_KDF_TIME_COST,
                                memory_cost_kib=settings.DDS_KDF_MEMORY_KIB,
                                parallelism=settings.DDS_KDF_PARALLELISM)


def user_kek_derive(*, user: User, password: str) -> bytes:
    """The user's KEK from their password, with the salt and costs stored at wrap time."""
    if not user.kdf_salt:
        raise KeyAccessError("this account has no key pair yet")
    params = primitives.KdfParams.from_dict(user.kdf_params)
    with kdf_slot(params.memory_cost_kib):  # bounded: 503 rather than an OOM-killed pod
        return primitives.derive_kek_with(password, bytes(user.kdf_salt), params)


def _wrap_user_private_key(user: User, private_der: bytes, password: str) -> bytes:
    """Wrap under a fresh salt and the current costs; returns the new KEK (so a caller
    that needs it does not run Argon2 a second time)."""
    params = kdf_params_current()
    salt = primitives.new_salt()
    with kdf_slot(params.memory_cost_kib):
        kek = primitives.derive_kek_with(password, salt, params)
    user.private_key_encrypted = primitives.wrap_private_key(private_der, kek, user.username)
    user.kdf_salt = salt
    user.kdf_params = params.to_dict()
    return kek


def user_keypair_new() -> tuple[bytes, bytes]:
    """A fresh RSA pair (DER private, PEM public). Slow (RSA-4096): callers make it before
    they open a transaction, so no row lock is held across it (docs/locking.md)."""
    return primitives.generate_user_keypair(bits=settings.DDS_USER_RSA_BITS)


def user_keys_create(*, user: User, password: str,
                     keypair: tuple[bytes, bytes] | None = None) -> None:
    """Give a user a fresh RSA key pair, wrapped under a KEK from ``password``."""
    private_der, public_pem = keypair or user_keypair_new()
    user.public_key = public_pem
    _wrap_user_private_key(user, private_der, password)
    user.save(update_fields=["public_key", "private_key_encrypted", "kdf_salt", "kdf_params"])


def user_private_key(*, user: User, kek: bytes) -> bytes:
    """The user's private key (DER), unwrapped with their KEK."""
    if not user.private_key_encrypted:
        raise KeyAccessError("this account has no key pair yet")
    try:
        return primitives.unwrap_private_key(bytes(user.private_key_encrypted), kek,
                                             user.username)
    except primitives.KeyWrapError as exc:
        raise KeyAccessError("the key-encryption key does not open this user's key") from exc


def user_keys_rewrap(*, user: User, kek: bytes, new_password: str) -> bytes:
    """Password change: same key pair, re-wrapped under the new password's KEK, which is
    returned.

    Project access is kept because the public key (and so every wrapped project key) is
    unchanged.
    """
    private_der = user_private_key(user=user, kek=kek)
    new_kek = _wrap_user_private_key(user, private_der, new_password)
    user.save(update_fields=["private_key_encrypted", "kdf_salt", "kdf_params"])
    return new_kek


@transaction.atomic
def user_keys_reset(*, user: User, new_password: str,
                    keypair: tuple[bytes, bytes] | None = None) -> int:
    """Password reset: the old key cannot be recovered, so the user gets a new pair.

    Every project key wrapped to the old public key is useless now and is removed; the
    user's memberships stay, and an "access fix" by a holder re-grants the keys. Returns
    how many project keys were lost.
    """
    lost = ProjectUserKey.objects.filter(user=user).delete()[0]
    user_keys_create(user=user, password=new_password, keypair=keypair)
    return lost


# --------------------------------------------------------------------------- project keys


def _public_key(holder: User | Invite) -> bytes:
    """The holder's RSA public key (PEM), or KeyAccessError when it has no key pair."""
    if not holder.public_key:
        raise KeyAccessError(f"{holder} has no key pair yet")
    return bytes(holder.public_key)


@transaction.atomic
def project_keys_create(*, project: Project, holders: Sequence[User]) -> bytes:
    """Make the project's X25519 key pair and wrap the private key to each holder.

    ``holders`` are users with key pairs (the unit's staff, the creator). The private key
    exists in clear only in this function's memory.
    """
    private_key, public_key = c4gh.generate_keypair()
    project.public_key = public_key
    project.save(update_fields=["public_key"])
    ProjectUserKey.objects.bulk_create([
        ProjectUserKey(project=project, user=u,
                       key_encrypted=primitives.wrap_project_key(private_key, _public_key(u)))
        for u in holders if u.public_key
    ], ignore_conflicts=True)
    return public_key


def project_private_key(*, project: Project, user: User, kek: bytes) -> bytes:
    """Unlock the project's X25519 private key with the user's own key."""
    row = ProjectUserKey.objects.filter(project=project, user=user).first()
    if row is None:
        raise KeyAccessError(f"you hold no key for project {project.public_id}")
    private_der = user_private_key(user=user, kek=kek)
    try:
        return primitives.unwrap_project_key(bytes(row.key_encrypted), private_der)
    except primitives.KeyWrapError as exc:
        raise KeyAccessError(
            f"your key no longer opens project {project.public_id}; ask for an access fix"
        ) from exc


def project_access_grant(*, project: Project, grantee: User, granter: User,
                         granter_kek: bytes) -> ProjectUserKey:
    """Wrap the project key to ``grantee``'s public key (idempotent: replaces any copy)."""
    grantee_key = _public_key(grantee)
    sk = project_private_key(project=project, user=granter, kek=granter_kek)
    row, _ = ProjectUserKey.objects.update_or_create(
        project=project, user=grantee,
        defaults={"key_encrypted": primitives.wrap_project_key(sk, grantee_key),
                  "created_at": timezone.now()})
    return row


def project_access_revoke(*, project: Project, user: User) -> bool:
    return ProjectUserKey.objects.filter(project=project, user=user).delete()[0] > 0


def project_keys_destroy(*, project: Project) -> None:
    """Remove every copy of the project key (delete/archive): the data becomes unreadable."""
    ProjectUserKey.objects.filter(project=project).delete()
    InviteProjectKey.objects.filter(project=project).delete()
    project.public_key = None
    project.save(update_fields=["public_key"])


def headers_reencrypt(*, project: Project, user: User, kek: bytes, headers: Sequence[bytes],
                      recipient_public_key: bytes) -> list[bytes]:
    """Re-address stored Crypt4GH headers to a client's ephemeral X25519 key.

    Security model point 7: the project private key never leaves the server; a download
    gets headers only the requesting client can open.
    """
    if len(recipient_public_key) != 32:
        raise ValueError("the recipient public key must be 32 bytes (X25519)")
    sk = project_private_key(project=project, user=user, kek=kek)
    return [c4gh.reencrypt_header(bytes(h), sk, [recipient_public_key]) for h in headers]


# --------------------------------------------------------------------------- invite keys


def _invite_kek(token: str) -> bytes:
    # The token is 256 random bits, so a fast KDF is enough; only its hash is stored.
    return hashlib.blake2b(token.encode(), digest_size=32, person=b"dds-invite-kek").digest()


def invite_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_keys_create(*, invite: Invite, token: str,
                       keypair: tuple[bytes, bytes] | None = None) -> None:
    """Give an invite a key pair, its private key wrapped under a KEK from the emailed token."""
    private_der, public_pem = keypair or user_keypair_new()
    invite.public_key = public_pem
    invite.private_key_encrypted = primitives.wrap_private_key(
        private_der, _invite_kek(token), f"invite:{invite.email.lower()}")
    invite.token_hash = invite_token_hash(token)
    invite.save(update_fields=["public_key", "private_key_encrypted", "token_hash"])


def invite_token_matches(*, invite: Invite, token: str) -> bool:
    stored = invite.token_hash
    return bool(stored) and hmac.compare_digest(stored or "", invite_token_hash(token))


def invite_access_grant(*, invite: Invite, project: Project, granter: User, granter_kek: bytes,
                        is_owner: bool = False) -> InviteProjectKey:
    sk = project_private_key(project=project, user=granter, kek=granter_kek)
    row, _ = InviteProjectKey.objects.update_or_create(
        invite=invite, project=project,
        defaults={"key_encrypted": primitives.wrap_project_key(sk, _public_key(invite)),
                  "is_owner": is_owner})
    return row


@transaction.atomic
def invite_keys_transfer(*, invite: Invite, token: str, user: User) -> list[Project]:
    """At registration: move the invite's project keys to the new user's key pair.

    Returns the projects the user now holds keys for.
    """
    if not invite_token_matches(invite=invite, token=token):
        raise KeyAccessError("the invite link is not valid")
    if not invite.private_key_encrypted:
        raise KeyAccessError("the invite has no key")
    try:
        invite_private = primitives.unwrap_private_key(
            bytes(invite.private_key_encrypted), _invite_kek(token),
            f"invite:{invite.email.lower()}")
    except primitives.KeyWrapError as exc:
        raise KeyAccessError("the invite's key cannot be opened") from exc
    user_key = _public_key(user)
    projects: list[Project] = []
    for row in InviteProjectKey.objects.filter(invite=invite).select_related("project"):
        sk = primitives.unwrap_project_key(bytes(row.key_encrypted), invite_private)
        ProjectUserKey.objects.update_or_create(
            project=row.project, user=user,
            defaults={"key_encrypted": primitives.wrap_project_key(sk, user_key)})
        projects.append(row.project)
    InviteProjectKey.objects.filter(invite=invite).delete()
    return projects
