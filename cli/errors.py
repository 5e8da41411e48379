"""What can go wrong, as the user and scripts see it: one exit status per kind of failure.

Every failure is one of the exceptions below; ``cli.app`` turns it into a message (or, with
``--json``, ``{"error": {"code", "message"}}``) and the exit status of its class. The table
of statuses is :class:`Exit`, documented in docs/cli.md.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar


class Exit(IntEnum):
    """The exit status of ``dds``: what a script can tell apart without reading messages."""

    OK = 0
    #: Anything not below: a local file that cannot be written, an answer we cannot read.
    ERROR = 1
    #: Wrong options or arguments (click's own status), including a destructive command
    #: without ``--yes`` when it cannot ask.
    USAGE = 2
    #: No usable login: run ``dds auth login``.
    NOT_LOGGED_IN = 3
    #: The server could not be reached or did not answer in time.
    UNREACHABLE = 4
    #: The server answered with an error (a refusal, or its own failure).
    REFUSED = 5
    #: A transfer or removal ran, and one or more of its files failed (see the summary).
    PARTIAL = 6
    #: Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130


class CliError(Exception):
    """A failure with a message meant for the user.

    ``code`` is the server's error code when the server gave one; ``kind`` is ours, used
    as the JSON error code otherwise.
    """

    exit: ClassVar[Exit] = Exit.ERROR
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, status: int | None = None,
                 code: str | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body
        self.status = status
        self.code = code

    @property
    def json_code(self) -> str:
        return self.code or self.kind


class UsageError(CliError):
    """The command line asks for something that cannot be done as given."""

    exit = Exit.USAGE
    kind = "usage"


class LoginRequired(CliError):
    """No usable token: the user must log in again."""

    exit = Exit.NOT_LOGGED_IN
    kind = "not_logged_in"


class Unreachable(CliError):
    """No answer from the server: a network failure or a timeout."""

    exit = Exit.UNREACHABLE
    kind = "unreachable"


class Refused(CliError):
    """The server's error answer (its message, status and code)."""

    exit = Exit.REFUSED
    kind = "refused"


class Cancelled(Exception):
    """The user interrupted the transfer (Ctrl-C)."""
