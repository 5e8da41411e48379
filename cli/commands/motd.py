"""``dds motd``: Messages of the day (Super Admin adds and sends; everyone sees them)."""

from __future__ import annotations

from typing import Any

import click

from cli.app import Ctx, DdsGroup, confirm, pass_ctx, yes_option
from cli.output import done, emit, table, when


@click.group(cls=DdsGroup)
def motd() -> None:
    """Messages of the day (Super Admin adds and sends; everyone sees them)."""


def _show(rows: list[dict[str, Any]]) -> None:
    table([{**row, "created_at": when(row.get("created_at"))} for row in rows],
          [("id", "ID"), ("created_at", "Created"), ("is_active", "Active"),
           ("message", "Message")])


@motd.command("ls")
@click.option("--all", "show_all", is_flag=True,
              help="Also the deactivated messages (Super Admin).")
@pass_ctx
def motd_ls(ctx: Ctx, show_all: bool) -> None:
    """List the active messages of the day (newest first)."""
    rows = ctx.api.get("motd", params={"all": "true"} if show_all else None)
    emit(ctx.json, rows, _show)


@motd.command("add")
@click.argument("message")
@pass_ctx
def motd_add(ctx: Ctx, message: str) -> None:
    """Add a message of the day: shown once per login session at the top of dds output,
    and in the portal (Super Admin)."""
    got = ctx.api.post("motd", {"message": message})
    done(ctx.json, got, f"Message {got['id']} added; everyone sees it from now on.")


@motd.command("deactivate")
@click.argument("motd_id", metavar="ID", type=click.IntRange(min=1))
@pass_ctx
def motd_deactivate(ctx: Ctx, motd_id: int) -> None:
    """Stop showing a message of the day (Super Admin)."""
    got = ctx.api.post(f"motd/{motd_id}/deactivate")
    done(ctx.json, got, f"Message {motd_id} deactivated.")


@motd.command("send")
@click.argument("motd_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--unit", help="Only this unit's staff and the researchers of its projects "
                             "(the unit's name, internal ref or public id).")
@yes_option
@pass_ctx
def motd_send(ctx: Ctx, motd_id: int, unit: str | None, yes: bool) -> None:
    """Email a message of the day to every user, or to one unit's (Super Admin)."""
    who = f"the staff and researchers of unit {unit}" if unit else "every active user"
    confirm(f"Email message {motd_id} to {who}?", yes=yes)
    got = ctx.api.post(f"motd/{motd_id}/send", {"unit": unit} if unit else {})
    done(ctx.json, got, f"Message {motd_id} emailed: {got['recipients']} email(s) queued, "
                        "one per person.")
