"""Exception hierarchy of the Crypt4GH engine.

Every failure mode gets its own class so that callers (the Django services, the CLI, the
portal) can map them to precise user-facing messages and HTTP status codes, and so that
tests can assert *which* integrity check fired. All of them derive from :class:`C4GHError`.
"""

from __future__ import annotations


class C4GHError(Exception):
    """Base class of every error raised by :mod:`c4gh`."""


class HeaderError(C4GHError):
    """The Crypt4GH header is malformed (bad magic, version, packet lengths, ...)."""


class NoMatchingKeyError(C4GHError):
    """No header packet could be decrypted with the given private key.

    Either the file was encrypted for somebody else, the key is wrong, or the header
    packets were tampered with (a flipped bit in a packet makes its MAC fail too).
    """

    def __init__(self, message: str = "no header packet is addressed to this key") -> None:
        super().__init__(message)


class UnknownPacketTypeError(HeaderError):
    """A decrypted header packet has a type other than 0 (data key) or 1 (edit list)."""

    def __init__(self, packet_type: int) -> None:
        self.packet_type = packet_type
        super().__init__(
            f"unknown Crypt4GH header packet type {packet_type} "
            "(only 0 = data encryption parameters and 1 = data edit list are defined)"
        )


class UnsupportedMethodError(HeaderError):
    """A header packet or data key uses an encryption method other than ChaCha20-Poly1305."""


class SegmentAuthError(C4GHError):
    """A data segment failed Poly1305 authentication (flipped bit, wrong session key)."""

    def __init__(self, index: int, detail: str = "") -> None:
        self.index = index
        msg = f"data segment {index} failed authentication (corrupted or tampered ciphertext)"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class TruncatedError(C4GHError):
    """The ciphertext ended early (or a stored size / segment count does not match)."""


class ChecksumMismatchError(C4GHError):
    """The SHA-256 of the decrypted original bytes differs from the expected one.

    Crypt4GH segments are authenticated independently, so a dropped, duplicated or
    reordered segment decrypts without any MAC failure; this end-to-end check catches it.
    """

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"SHA-256 mismatch: expected {expected}, got {actual} "
            "(segments dropped, reordered or substituted, or wrong file)"
        )


class SizeMismatchError(C4GHError):
    """The decrypted original size differs from the expected size."""


class DecompressionError(C4GHError):
    """The authenticated plaintext is not a valid/complete zstd stream."""


class KeyFileError(C4GHError):
    """A Crypt4GH key file could not be parsed or decrypted (wrong passphrase)."""
