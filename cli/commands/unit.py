"""``dds unit``: the units, their storage against the quota, and their usage for
invoicing (unit staff: their own unit; Super Admin: every unit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.app import Ctx, DdsGroup, pass_ctx
from cli.errors import CliError, UsageError
from cli.output import done, emit, human, out, table


@click.group(cls=DdsGroup)
def unit() -> None:
    """Units: storage against the quota, usage for invoicing."""


def _share(row: dict[str, Any]) -> float | None:
    quota = row.get("quota_bytes") or 0
    if quota <= 0:
        return None
    return (int(row.get("stored_bytes") or 0) + int(row.get("reserved_bytes") or 0)) / quota


def unit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units with what the quota counts (stored + reserved) as a share of it, and a flag
    at or above the unit's warning level."""
    shown = []
    for r in rows:
        share = _share(r)
        level = r.get("warning_level")
        warn = share is not None and level is not None and share >= float(level)
        shown.append({**r, "stored": human(int(r.get("stored_bytes") or 0)),
                      "reserved": human(int(r.get("reserved_bytes") or 0)),
                      "quota": human(int(r.get("quota_bytes") or 0)),
                      "used": "–" if share is None else f"{share:.1%}",
                      "warning": "at or above warning level" if warn else ""})
    return shown


def _show_units(rows: list[dict[str, Any]]) -> None:
    table(unit_rows(rows), [("name", "Name"), ("public_id", "ID"),
                            ("contact_email", "Contact"), ("stored", "Stored"),
                            ("reserved", "Reserved"), ("quota", "Quota"),
                            ("used", "Used"), ("warning", "Warning")])


@unit.command("ls")
@pass_ctx
def unit_ls(ctx: Ctx) -> None:
    """List units with their storage against the quota (Used counts the uploads in
    progress too, as the quota does)."""
    emit(ctx.json, ctx.api.get("units"), _show_units)


def _money(value: str | None, currency: str) -> str | None:
    return None if value is None else f"{value} {currency}"


def show_usage(report: dict[str, Any]) -> None:
    """One table per unit (a row per project, then the unit's total), then the total."""
    currency = report.get("currency", "")
    span = (report["from"] if report["from"] == report["to"]
            else f"{report['from']} to {report['to']}")
    live = [m["month"] for m in report.get("months", []) if not m.get("recorded", True)]
    for u in report.get("units", []):
        price = u.get("price_per_gb_month")
        title = (f"{u['unit']} ({u['internal_ref']}), {span}: "
                 + (f"{price} {currency} per GB-month" if price is not None
                    else "no price set"))
        rows = [{"project": p["project_id"], "title": p["title"],
                 "gb_months": p["gb_months"], "cost": _money(p.get("cost"), currency)}
                for p in u.get("projects", [])]
        rows.append({"project": "Total", "title": "", "gb_months": u["gb_months"],
                     "cost": _money(u.get("cost"), currency)})
        table(rows, [("project", "Project"), ("title", "Title"),
                     ("gb_months", "GB-months"), ("cost", "Cost")], title=title)
    total = report.get("total", {})
    cost = _money(total.get("cost"), currency)
    out.print(f"Total {span}: {total.get('gb_months')} GB-months"
              + (f", {cost}" if cost else ""), markup=False)
    if live:
        out.print(f"Not recorded yet (computed from the stored files): {', '.join(live)}",
                  markup=False)


def usage_params(month: str | None, first: str | None, last: str | None,
                 unit_name: str | None) -> dict[str, str]:
    if month and (first or last):
        raise UsageError("Give either --month or --from/--to, not both.")
    if last and not first:
        raise UsageError("--to needs --from.")
    params: dict[str, str] = {}
    if month:
        params["month"] = month
    if first:
        params["from"] = first
    if last:
        params["to"] = last
    if unit_name:
        params["unit"] = unit_name
    return params


@unit.command("usage")
@click.option("--month", metavar="YYYY-MM", help="One month (default: last month).")
@click.option("--from", "first", metavar="YYYY-MM", help="First month of a range.")
@click.option("--to", "last", metavar="YYYY-MM", help="Last month of a range (included).")
@click.option("--unit", "unit_name", metavar="UNIT",
              help="Only this unit: its name, internal ref or public id (Super Admin).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as CSV to this file (the file billing gets).")
@pass_ctx
def unit_usage(ctx: Ctx, month: str | None, first: str | None, last: str | None,
               unit_name: str | None, csv_path: Path | None) -> None:
    """Storage usage in GB-months and cost, per project (a GB-month is 10^9 bytes stored
    for a whole calendar month). The current month is computed so far."""
    params = usage_params(month, first, last, unit_name)
    if csv_path is None:
        emit(ctx.json, ctx.api.get("usage", params=params), show_usage)
        return
    text = ctx.api.request("GET", "usage", params={**params, "format": "csv"}).text
    try:
        csv_path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"Cannot write {csv_path}: {exc.strerror or exc}") from None
    done(ctx.json, {"csv": str(csv_path), "bytes": len(text.encode())},
         f"Wrote the usage report to {csv_path}")
