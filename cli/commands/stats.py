"""``dds stats``: Statistics of the whole system, one snapshot per month (Super Admin)."""

from __future__ import annotations

from typing import Any

import click

from cli.app import Ctx, DdsGroup, pass_ctx
from cli.output import emit, human, table


def stats_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"month": r["month"], "units": r["units"],
             "users": r.get("users", {}).get("total"),
             "researchers": r.get("users", {}).get("researcher"),
             "projects": r.get("projects", {}).get("active"),
             "stored": human(int(r.get("bytes_stored") or 0)),
             "uploaded": human(int(r.get("bytes_uploaded") or 0)),
             "downloaded": human(int(r.get("bytes_downloaded") or 0)),
             "released": r.get("deliveries_released")} for r in rows]


def show_stats(rows: list[dict[str, Any]]) -> None:
    table(stats_rows(rows), [
        ("month", "Month"), ("units", "Units"), ("users", "Users"),
        ("researchers", "Researchers"), ("projects", "Active projects"),
        ("stored", "Stored"), ("uploaded", "Uploaded"), ("downloaded", "Downloaded"),
        ("released", "Releases")])


@click.group(cls=DdsGroup, invoke_without_command=True)
@click.pass_context
def stats(click_ctx: click.Context) -> None:
    """Statistics of the whole system, one snapshot per month (Super Admin).

    Without a subcommand: the table of every monthly snapshot (same as `dds stats ls`)."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(stats_ls)


@stats.command("ls")
@pass_ctx
def stats_ls(ctx: Ctx) -> None:
    """Every monthly snapshot, oldest first: units, active users, active projects (In
    Progress, Available, Expired), bytes stored, uploaded and downloaded in the month,
    releases in the month."""
    emit(ctx.json, ctx.api.get("stats"), show_stats)
