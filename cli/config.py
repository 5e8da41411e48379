"""Where the client keeps its state: the login token, upload journals, a local key pair.

Everything lives under one directory (``$DDS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/dds``,
else ``~/.config/dds``) created 0700; secret files are created 0600 and *refused* when
group or others can read them, because a readable token is a stolen login.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cli.errors import CliError


def config_dir() -> Path:
    base = os.environ.get("DDS_CONFIG_DIR")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".config") / "dds"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, atomically (temp file + rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # O_CREAT's mode is filtered by the umask and ignored for an existing file.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def read_private(path: Path) -> bytes | None:
    """The content of a secret file, or None if absent; refuses one others can read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CliError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                           f"refusing to use it. Run `chmod 600 {path}` if you trust it, "
                           "or `dds auth login` again.")
        return fh.read()


def token_path() -> Path:
    return config_dir() / "token.json"


def load_token() -> dict | None:
    raw = read_private(token_path())
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise CliError(f"{token_path()} is damaged; run `dds auth login` again.")


def save_token(data: dict) -> None:
    write_private(token_path(), json.dumps(data, indent=1).encode())


def delete_token() -> bool:
    try:
        token_path().unlink()
        return True
    except FileNotFoundError:
        return False
