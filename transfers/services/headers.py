"""Crypt4GH headers under the project key: checking what a client sends, re-addressing
what the server stores. Shared by uploads (complete, header check) and downloads.

The server cannot read a header on its own: the project's private key is unlocked with
the caller's KEK, on their behalf, and never leaves this module's callers.
"""

from __future__ import annotations

from collections.abc import Sequence

import c4gh
from accounts.models import User
from keys.errors import KeyAccessError
from keys.services import headers_reencrypt, project_private_key
from projects.models import Project
from transfers.errors import BadInput, NotAllowed

#: Largest Crypt4GH header accepted (a header for one reader is 124 bytes; a few readers
#: and an edit list stay far below this).
HEADER_MAX_BYTES = 64 * 1024
#: An X25519 public key, raw.
PUBLIC_KEY_BYTES = 32


class ProjectKeyOnce:
    """Unlocks the project key on first use and remembers the key (or the refusal), so a
    batch unlocks it once however many headers it checks."""

    def __init__(self, *, project: Project, by: User, kek: bytes) -> None:
        self.project, self.by, self.kek = project, by, kek
        self._key: bytes | None = None
        self._refusal: str | None = None

    def __call__(self) -> bytes:
        if self._key is None and self._refusal is None:
            try:
                self._key = project_private_key(project=self.project, user=self.by,
                                                kek=self.kek)
            except KeyAccessError as exc:  # no grant / wrong session
                self._refusal = exc.message
        if self._key is None:
            raise NotAllowed(self._refusal or "")
        return self._key


def header_validate(*, project: Project, key: ProjectKeyOnce,
                    header: bytes) -> c4gh.HeaderInfo:
    """What the header says, if it is one whole Crypt4GH header for the project's key."""
    if len(header) > HEADER_MAX_BYTES:
        raise BadInput("The Crypt4GH header is too large.")
    try:
        info = c4gh.parse_header(header, key())
    except c4gh.NoMatchingKeyError:
        raise BadInput(f"The Crypt4GH header is not addressed to the key of "
                       f"{project.public_id}; encrypt to the project's public key.")
    except (c4gh.C4GHError, ValueError) as exc:
        raise BadInput(f"The Crypt4GH header does not parse: {exc}")
    if info.header_len != len(header):
        raise BadInput("Trailing bytes after the Crypt4GH header.")
    return info


def recipient_key_check(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise BadInput(f"public_key must be a raw {PUBLIC_KEY_BYTES}-byte X25519 key.")


def headers_for_recipient(*, project: Project, user: User, kek: bytes,
                          headers: Sequence[bytes], recipient_public_key: bytes) -> list[bytes]:
    """The headers re-encrypted to the client's ephemeral key (checked with
    :func:`recipient_key_check` first), opened with the project key the caller holds."""
    try:
        return headers_reencrypt(project=project, user=user, kek=kek, headers=headers,
                                 recipient_public_key=recipient_public_key)
    except KeyAccessError as exc:
        raise NotAllowed(exc.message)
    except c4gh.C4GHError as exc:
        raise BadInput(f"Cannot re-encrypt a header: {exc}")
