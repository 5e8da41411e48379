"""Messages of the day at the top of ``dds`` output, once per login session.

:func:`show_new` runs before every command that uses the authenticated API, so it costs
one small GET with a short timeout, and nothing it meets (no answer, an error, a damaged
state file) fails or holds up the command: the command itself will report a real problem.

Which messages were shown is kept in the state directory (``motd.json``, 0600), keyed by
a hash of the login session (the server's session id inside the access token, which
stays the same across token refreshes), never the token itself. A new ``dds auth login``
is a new session: the active messages are shown once more.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from cli import config
from cli.errors import CliError
from cli.output import err, when

if TYPE_CHECKING:
    from cli.app import Ctx
    from cli.client import Api

log = logging.getLogger(__name__)

#: Seconds to wait for the messages; a slower server only loses its announcement.
TIMEOUT = 2.0
STATE_FILE = "motd.json"
#: At most this many new messages above one command's output (the newest).
MAX_SHOWN = 5
#: Groups that show messages themselves (``dds motd ls``).
SKIP_GROUPS = frozenset({"motd"})


def _claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the server verifies; we only need an id)."""
    try:
        payload = jwt.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def session_key(token: dict[str, Any]) -> str:
    """A stable, non-secret name for the login session the token belongs to."""
    sid = _claims(str(token.get("access") or "")).get("sid")
    basis = [token.get("url"), token.get("username"), sid or token.get("saved_at")]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()[:32]


def _load_seen(key: str) -> set[int]:
    try:
        raw = config.read_private(config.state_dir() / STATE_FILE)
        data = json.loads(raw) if raw is not None else None
    except (CliError, ValueError):
        data = None  # damaged or readable by others: start afresh (it is rewritten 0600)
    if not isinstance(data, dict) or data.get("session") != key:
        return set()  # another login session: everything is new again
    seen = data.get("seen")
    return {i for i in seen if isinstance(i, int)} if isinstance(seen, list) else set()


def _save_seen(key: str, seen: set[int]) -> None:
    data = {"session": key, "seen": sorted(seen)}
    config.write_private(config.state_dir() / STATE_FILE, json.dumps(data).encode())


def _skipped() -> bool:
    ctx = click.get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None:
        if ctx.parent is not None and ctx.info_name:
            names.append(ctx.info_name)
        ctx = ctx.parent
    return bool(SKIP_GROUPS.intersection(names))


def show_new(ctx: Ctx, api: Api) -> None:
    """Called once per command, when the command first uses the authenticated API:
    print on stderr the active messages this login session has not seen yet."""
    if _skipped():
        return
    try:
        token = config.load_token()
        if not token:
            return
        key = session_key(token)
        seen = _load_seen(key)
        rows = api.request("GET", "motd", timeout=TIMEOUT).json()
        if not isinstance(rows, list):
            return
        new = [r for r in rows if isinstance(r, dict) and isinstance(r.get("id"), int)
               and r["id"] not in seen]
        if not new:
            return
        for row in reversed(new[:MAX_SHOWN]):  # oldest first, so the newest is nearest
            err.print(f"[bold yellow]Message of the day[/] ({when(row.get('created_at'))}): "
                      f"{escape(str(row.get('message', '')))}", emoji=False)
        # Remember only ids still active, so the file stays as small as the list.
        active = {r["id"] for r in rows if isinstance(r, dict) and isinstance(r.get("id"), int)}
        _save_seen(key, (seen & active) | {r["id"] for r in new})
    except (CliError, OSError, ValueError, TypeError) as exc:
        # No answer, maintenance, a damaged file: the command goes on without messages.
        log.debug("messages of the day not shown: %s", type(exc).__name__)
