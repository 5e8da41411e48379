"""Errors the client reports to the user (one clear message, non-zero exit)."""

from __future__ import annotations


class CliError(Exception):
    """A failure with a message meant for the user."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: str | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body
        self.status = status
        self.code = code


class LoginRequired(CliError):
    """No usable token: the user must log in again."""
