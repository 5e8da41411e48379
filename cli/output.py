"""How ``dds`` prints: data on stdout, everything else on stderr, one format per kind.

* Data (tables, JSON, a project ID, a key) goes to stdout, so that it pipes cleanly.
  With ``--json`` stdout holds exactly one JSON document: the command's result, or
  ``{"error": {"code", "message"}}`` when it failed.
* Progress, messages and the failure summary go to stderr.
* Tables are drawn with rich on a terminal; piped (stdout not a terminal) they are plain
  columns (a header line, values padded with spaces, nothing wrapped or folded), for
  ``grep``, ``cut`` and ``awk``.
* Times are shown in this machine's time zone, the same way everywhere.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.errors import CliError


class _Messages(Console):
    """Wraps long lines on a terminal only: piped or logged, a message stays one line."""

    @property
    def soft_wrap(self) -> bool:
        return not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, _value: bool) -> None:
        pass  # decided by where the output goes, when it is printed


out = Console(highlight=False, soft_wrap=True)
err = _Messages(stderr=True, highlight=False)

#: (key in the row, column label)
Columns = Sequence[tuple[str, str]]
#: Columns between plain values: two spaces, so that one space inside a value stays readable.
GAP = "  "


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def error_json(code: str, message: str) -> None:
    print_json({"error": {"code": code, "message": message}})


def emit(as_json: bool, data: Any, render: Callable[[Any], None]) -> None:
    """``data`` as JSON with ``--json``, else as ``render`` shows it."""
    if as_json:
        print_json(data)
    else:
        render(data)


def done(as_json: bool, data: Any, message: str) -> None:
    """What a command that changed something did: its result as JSON with ``--json``,
    else ``message`` on stderr (rich markup allowed)."""
    if as_json:
        print_json(data)
    else:
        err.print(message)


def show_error(exc: CliError, as_json: bool) -> None:
    if as_json:
        error_json(exc.json_code, exc.message)
    else:
        label = "Not logged in" if exc.kind == "not_logged_in" else "Error"
        err.print(f"[bold red]{label}:[/] {escape(exc.message)}", emoji=False)


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Columns,
          title: str | None = None) -> None:
    values = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    labels = [label for _, label in columns]
    if not out.is_terminal:
        if title:
            out.print(title, markup=False)
        plain([labels, *values])
        return
    t = Table(title=title, show_lines=False)
    for label in labels:
        t.add_column(label, overflow="fold")
    for row_values in values:
        t.add_row(*row_values)
    out.print(t)


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """One record, a name and a value per line."""
    values = [[name, cell(value)] for name, value in pairs]
    if not out.is_terminal:
        plain(values)
        return
    t = Table(show_header=False, box=None)
    for name, value in values:
        t.add_row(name, value)
    out.print(t)


def plain(lines: list[list[str]]) -> None:
    """Rows of values as plain columns (the first row is the header, if any)."""
    if not lines:
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        text = GAP.join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        out.print(text, markup=False, emoji=False, crop=False, overflow="ignore")


def when(value: Any) -> str:
    """An API timestamp in this machine's time zone, the same way everywhere (the API
    answers some in UTC and some in the server's zone)."""
    if not value:
        return "–"
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    local = parsed.astimezone()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or local.strftime('%z')}"


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)
