"""Messages of the day at the top of ``dds`` output, once per login session."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli.app import Ctx
    from cli.client import Api


def show_new(ctx: Ctx, api: Api) -> None:
    """Called once per command, when the command first uses the authenticated API."""
