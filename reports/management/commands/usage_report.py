from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Unit
from accounts.selectors import unit_find
from core.errors import DDSError
from reports.management.commands._month import month_option
from reports.services.usage import usage_report, usage_report_csv


def _write_atomically(target: str, text: str) -> None:
    """``text`` to ``target``, whole or not at all: written to a temporary file beside it
    and renamed over it; an OS error is a CommandError that names the path and why."""
    path = Path(target)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise CommandError(f"Cannot write the CSV to {target}: "
                           f"{exc.strerror or exc}.") from None


class Command(BaseCommand):
    help = ("Storage usage per unit and project in GB-months and cost, for invoicing: "
            "last month by default. Prints a table, or writes the CSV with --csv.")

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")
        parser.add_argument("--to", help="YYYY-MM: a range from --month to this month")
        parser.add_argument("--unit", help="Only this unit (name, internal ref or public id)")
        parser.add_argument("--csv", metavar="FILE",
                            help="Write the CSV to FILE ('-' for standard output)")

    def handle(self, *args, month=None, to=None, unit=None, csv=None, **options):
        first = month_option(month)
        last = month_option(to) if to else first
        try:
            units = (Unit.objects.filter(pk=unit_find(unit).pk) if unit
                     else Unit.objects.all())
            report = usage_report(first=first, last=last, units=units)
        except DDSError as exc:
            raise CommandError(exc.message) from None
        if csv:
            text = usage_report_csv(report)
            if csv == "-":
                self.stdout.write(text, ending="")
            else:
                _write_atomically(csv, text)
                self.stderr.write(f"wrote {csv}")
            return
        span = f"{first:%Y-%m}" + ("" if last == first else f" to {last:%Y-%m}")
        self.stdout.write(f"Usage {span} ({report.currency})"
                          + ("" if report.recorded else " — not all months recorded yet: "
                             "computed from the stored files"))
        for u in report.units:
            cost = "no price" if u.cost is None else f"{u.cost} {report.currency}"
            self.stdout.write(f"{u.name} ({u.internal_ref}): {u.gb_months} GB-months, {cost}")
            for p in u.projects:
                pcost = "" if p.cost is None else f"  {p.cost}"
                self.stdout.write(f"  {p.project_id}  {p.gb_months}{pcost}  {p.title}")
        total = "" if report.cost is None else f", {report.cost} {report.currency}"
        self.stdout.write(f"Total: {report.gb_months} GB-months{total}")
