"""Crypt4GH v1 engine for DDS (pure Python: ``cryptography`` + ``zstandard``, no Django).

Used alike by the server, the CLI and the portal. See ``docs/crypto.md`` for the format as
DDS uses it (124-byte header kept in the database, segments in object storage).
"""

from .compression import detect_compressed_format, should_compress
from .errors import (
    C4GHError,
    ChecksumMismatchError,
    DecompressionError,
    HeaderError,
    KeyFileError,
    NoMatchingKeyError,
    SegmentAuthError,
    SizeMismatchError,
    TruncatedError,
    UnknownPacketTypeError,
    UnsupportedMethodError,
)
from .header import (
    SINGLE_RECIPIENT_HEADER_SIZE,
    HeaderInfo,
    derive_public_key,
    encrypt_header,
    generate_keypair,
    header_length,
    parse_header,
    reencrypt_header,
)
from .keyfiles import (
    export_private_key,
    export_public_key,
    load_private_key,
    load_public_key,
    write_keypair,
)
from .stream import (
    CIPHER_SEGMENT_SIZE,
    SEGMENT_SIZE,
    Decryptor,
    Encryptor,
    EncryptResult,
    decrypt_bytes,
    decrypt_file,
    decrypt_stream,
    encrypt_bytes,
    encrypt_file,
    encrypt_stream,
    segment_count,
    stored_size,
)

__all__ = [
    "CIPHER_SEGMENT_SIZE",
    "SEGMENT_SIZE",
    "SINGLE_RECIPIENT_HEADER_SIZE",
    "C4GHError",
    "ChecksumMismatchError",
    "DecompressionError",
    "Decryptor",
    "EncryptResult",
    "Encryptor",
    "HeaderError",
    "HeaderInfo",
    "KeyFileError",
    "NoMatchingKeyError",
    "SegmentAuthError",
    "SizeMismatchError",
    "TruncatedError",
    "UnknownPacketTypeError",
    "UnsupportedMethodError",
    "decrypt_bytes",
    "decrypt_file",
    "decrypt_stream",
    "derive_public_key",
    "detect_compressed_format",
    "encrypt_bytes",
    "encrypt_file",
    "encrypt_header",
    "encrypt_stream",
    "export_private_key",
    "export_public_key",
    "generate_keypair",
    "header_length",
    "load_private_key",
    "load_public_key",
    "parse_header",
    "reencrypt_header",
    "segment_count",
    "should_compress",
    "stored_size",
    "write_keypair",
]
