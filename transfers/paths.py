"""Project-relative paths: one normal form, nothing that escapes the project."""

from __future__ import annotations

import unicodedata

from transfers.errors import BadInput

MAX_PATH = 1024
MAX_NAME = 255


def path_normalise(raw: str, *, allow_root: bool = False) -> str:
    """``a//b/./c`` -> ``a/b/c``. Refuses ``..``, absolute paths and control characters.

    Refusing (rather than silently resolving) ``..`` and leading slashes means a client
    bug can never write outside the folder the user meant.
    """
    if not isinstance(raw, str):
        raise BadInput("A path must be a string.")
    invisible = sorted({f"U+{ord(ch):04X}" for ch in raw
                        if unicodedata.category(ch) in ("Cc", "Cf")})
    if invisible:
        # Control characters, and format characters (bidi overrides, zero-width spaces,
        # BOM): "report\u202efdp.exe" would read as "reportexe.pdf".
        raise BadInput(f"Path {raw!r} contains invisible or control characters "
                       f"({', '.join(invisible)}).")
    if raw.startswith("/") or raw.startswith("\\") or (len(raw) > 1 and raw[1] == ":"):
        raise BadInput(f"Path {raw!r} is absolute; give a path inside the project.")
    if "\\" in raw:
        raise BadInput(f"Path {raw!r} contains a backslash; use '/' as separator.")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInput(f"Path {raw!r} contains '..'; paths cannot leave the project.")
    path = unicodedata.normalize("NFC", "/".join(parts))
    if not path and not allow_root:
        raise BadInput("The path is empty.")
    if len(path) > MAX_PATH or any(len(p) > MAX_NAME for p in parts):
        raise BadInput(f"Path is too long (at most {MAX_PATH} characters, "
                       f"{MAX_NAME} per name).")
    return path


def path_split(path: str) -> tuple[str, str]:
    """(folder, name); the root folder is ''."""
    folder, _, name = path.rpartition("/")
    return folder, name


def path_ancestors(folder: str) -> list[str]:
    """'' and every prefix folder of ``folder``: 'a/b' -> ['', 'a', 'a/b']."""
    if not folder:
        return [""]
    parts = folder.split("/")
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]
