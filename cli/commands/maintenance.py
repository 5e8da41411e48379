"""``dds maintenance``: Maintenance mode (Super Admin)."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from cli.app import Ctx, DdsGroup, pass_ctx
from cli.output import done, emit, fields, when


@click.group(cls=DdsGroup)
def maintenance() -> None:
    """Maintenance mode (Super Admin)."""


def _state(ctx: Ctx, active: bool, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"active": active}
    if message is not None:
        body["message"] = message
    got: dict[str, Any] = ctx.api.request("PUT", "maintenance", json=body).json()
    return got


@maintenance.command("on")
@click.option("-m", "--message", help="What everyone else is told while it is on.")
@pass_ctx
def maintenance_on(ctx: Ctx, message: str | None) -> None:
    """Switch maintenance mode on: everyone but the Super Admin is refused."""
    got = _state(ctx, True, message)
    done(ctx.json, got, f"Maintenance mode is on: \"{escape(got['message'])}\"")


@maintenance.command("off")
@pass_ctx
def maintenance_off(ctx: Ctx) -> None:
    """Switch maintenance mode off: everyone may use the system again."""
    got = _state(ctx, False, None)
    done(ctx.json, got, "Maintenance mode is off.")


def _show(state: dict[str, Any]) -> None:
    pairs: list[tuple[str, Any]] = [("Maintenance", "on" if state["active"] else "off")]
    if state["active"]:
        pairs += [("Message", state.get("message")), ("Since", when(state.get("changed_at")))]
    else:
        changed = state.get("changed_at")
        pairs.append(("Changed", when(changed) if changed else "never"))
    fields(pairs)


@maintenance.command("status")
@pass_ctx
def maintenance_status(ctx: Ctx) -> None:
    """Whether maintenance mode is on, and its message."""
    emit(ctx.json, ctx.api.get("maintenance"), _show)
