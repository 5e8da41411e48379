"""Where the client keeps what it knows: the login token, a local key pair, upload journals.

Configuration (the token, the key pair for ``--keep-encrypted``) lives in the config
directory: ``$DDS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/dds``, else ``~/.config/dds``.
State that only a running transfer needs (upload journals, which hold session keys) lives
in the platform's state directory (platformdirs: ``$XDG_STATE_HOME/dds``, else
``~/.local/state/dds`` on Linux); ``$DDS_STATE_DIR`` overrides it, and with
``$DDS_CONFIG_DIR`` alone it is that directory's ``state/``, so that one variable keeps a
whole setup (a test, a container) in one place. Both directories are 0700; secret files are
created 0600 and *refused* when group or others can read them, because a readable token is
a stolen login.

The token file is ``<config dir>/token.json`` unless ``--token-path FILE`` or
``$DDS_TOKEN_PATH`` names another one (a shared machine, one login per project...): it
is read, refreshed, written (0600, its folder made 0700 if missing) and, at logout,
removed there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import platformdirs

from cli.errors import CliError

APP = "dds"
#: Journals of dds versions that kept them in the config directory (moved on first use).
OLD_JOURNALS = "journal"
TOKEN_PATH_ENV = "DDS_TOKEN_PATH"  # noqa: S105 - a variable name, not a secret

#: ``--token-path`` of the running command (:func:`use_token_path`); None: the default.
_token_path_option: Path | None = None


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)  # made by someone else's umask, or an older dds
    return path


def config_dir() -> Path:
    base = os.environ.get("DDS_CONFIG_DIR")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".config") / APP
    return _private_dir(path)


def state_dir() -> Path:
    explicit = os.environ.get("DDS_STATE_DIR")
    if explicit:
        return _private_dir(Path(explicit))
    if os.environ.get("DDS_CONFIG_DIR"):
        return _private_dir(config_dir() / "state")
    return _private_dir(Path(platformdirs.user_state_dir(APP, appauthor=False)))


def journal_dir() -> Path:
    """The upload journals' directory, with journals of the old location moved in."""
    path = state_dir() / "journal"
    old = config_dir() / OLD_JOURNALS
    if old.is_dir() and old.resolve() != path.resolve():
        _move_journals(old, path)
    return _private_dir(path)


def _move_journals(old: Path, new: Path) -> None:
    """Move every journal entry from ``old`` to ``new`` (one folder per server and
    project), keeping an entry already in ``new``; ``old`` goes once it is empty.

    Renames, so a concurrent ``dds`` sees each entry in one place or the other; across
    file systems (a state dir on another disk) the entry is copied, then removed.
    """
    _private_dir(new)
    for scope in old.iterdir():
        if not scope.is_dir():
            continue
        target = _private_dir(new / scope.name)
        for entry in scope.iterdir():
            moved = target / entry.name
            if moved.exists():
                entry.unlink(missing_ok=True)  # the newer location wins
                continue
            try:
                entry.rename(moved)
            except OSError:  # another file system
                raw = read_private(entry)
                if raw is not None:
                    write_private(moved, raw)
                entry.unlink(missing_ok=True)
        _rmdir_quietly(scope)
    _rmdir_quietly(old)


def _rmdir_quietly(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty (a file we do not know, or another dds just wrote one): keep it


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


def use_token_path(path: str | None) -> None:
    """Keep the login token in ``path`` (``--token-path``) for this run; None: the default
    (``$DDS_TOKEN_PATH``, else the config directory's token.json)."""
    global _token_path_option
    _token_path_option = Path(path).expanduser() if path else None


def token_path() -> Path:
    if _token_path_option is not None:
        return _token_path_option
    explicit = os.environ.get(TOKEN_PATH_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return config_dir() / "token.json"


def load_token() -> dict[str, Any] | None:
    raw = read_private(token_path())
    if raw is None:
        return None
    try:
        token = json.loads(raw)
    except ValueError:
        token = None
    if not isinstance(token, dict):
        raise CliError(f"{token_path()} is damaged; run `dds auth login` again.")
    return token


def tokens_to_store(url: str, username: str, tokens: dict[str, Any]) -> dict[str, Any]:
    """The token file's content: the server's tokens, and the server and user they are for."""
    return {"url": url, "username": username, "access": tokens["access"],
            "refresh": tokens["refresh"],
            "access_expires_at": tokens.get("access_expires_at"),
            "refresh_expires_at": tokens.get("refresh_expires_at"),
            "saved_at": dt.datetime.now(dt.UTC).isoformat()}


def save_token(data: dict[str, Any]) -> None:
    path = token_path()
    try:
        write_private(path, json.dumps(data, indent=1).encode())
    except OSError as exc:
        raise CliError(f"cannot write the token file {path}: {exc.strerror or exc}") from None


def delete_token() -> bool:
    try:
        token_path().unlink()
        return True
    except FileNotFoundError:
        return False
