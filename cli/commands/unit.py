"""``dds unit``: the units (Super Admin)."""

from __future__ import annotations

from typing import Any

import click

from cli.app import Ctx, DdsGroup, pass_ctx
from cli.output import emit, table


@click.group(cls=DdsGroup)
def unit() -> None:
    """Units (Super Admin)."""


def _show_units(rows: list[dict[str, Any]]) -> None:
    table(rows, [("name", "Name"), ("public_id", "ID"), ("contact_email", "Contact"),
                 ("days_in_available", "Days available"), ("quota_bytes", "Quota")])


@unit.command("ls")
@pass_ctx
def unit_ls(ctx: Ctx) -> None:
    """List units."""
    emit(ctx.json, ctx.api.get("units"), _show_units)
