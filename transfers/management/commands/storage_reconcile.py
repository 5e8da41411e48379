import json

from django.core.management.base import CommandError
from django.template.defaultfilters import filesizeformat

from accounts.selectors import unit_find
from core.errors import DDSError
from jobs.runner import ScheduledJobCommand
from transfers.services.reconcile import (
    Report,
    storage_reconcile,
    storage_reconcile_report_send,
)


def _render(report: Report) -> str:
    t = report.totals
    mode = " (dry run: nothing changed)" if report.dry_run else (
        " (deleting orphans)" if report.delete else "")
    lines = [
        f"Storage reconciliation of {report.unit or 'every unit'}{mode}, grace "
        f"{report.grace_hours:g} h: {t['projects_checked']} project(s) checked",
        f"  orphan objects:  {t['orphan_objects']} ({filesizeformat(t['orphan_bytes'])}), "
        f"{t['orphans_deleted']} deleted",
        f"  orphan uploads:  {t['orphan_uploads']} ({t['orphan_uploads_aborted']} aborted)",
        f"  missing objects: {t['missing_objects']} ({t['newly_lost']} newly flagged lost, "
        f"{t['found_again']} found again)",
        f"  missing buckets: {t['missing_buckets']}",
        f"  stale buckets:   {t['stale_buckets']} ({t['stale_buckets_deleted']} deleted)",
    ]
    for p in report.projects:
        lines.append(f"{p.project} [{p.status}] bucket {p.bucket}: {p.objects} object(s)"
                     + (" - BUCKET MISSING" if p.missing_bucket else ""))
        lines += [f"  orphan   {o.key}  {o.size} B  {o.last_modified:%Y-%m-%d %H:%M}"
                  + ("  deleted" if o.deleted else "") for o in p.orphans]
        lines += [f"  upload   {u.key}  {u.upload_id}"
                  + (f"  open since {u.initiated:%Y-%m-%d %H:%M}" if u.initiated else "")
                  + ("  aborted" if u.aborted else "") for u in p.orphan_uploads]
        lines += [f"  missing  {m.path}  (version {m.version}, object {m.object_key})"
                  for m in p.missing]
        if p.found_again:
            lines.append(f"  {p.found_again} lost file(s) found again")
    lines += [f"ERROR {e}" for e in report.errors]
    for b in report.stale_buckets:
        owner = f"project {b.project} ({b.reason})" if b.project else "no project"
        lines.append(f"stale bucket {b.bucket} on {b.storage}: {owner}, "
                     f"{'empty' if b.empty else 'not empty'}"
                     + (", deleted" if b.deleted else ""))
    return "\n".join(lines)


class Command(ScheduledJobCommand):
    help = ("Compare the catalogue with storage per project bucket: orphan objects (after "
            "DDS_RECONCILE_GRACE_HOURS), missing objects (flagged lost), stale buckets, "
            "missing buckets. Emails the report to DDS_OPERATOR_EMAILS (the weekly job); "
            "exits non-zero only when it fails, not on findings.")

    def add_arguments(self, parser):
        parser.add_argument("--unit", help="Only this unit (name, internal ref or public id).")
        parser.add_argument("--delete", action="store_true",
                            help="Delete orphan objects (and abort orphan multipart "
                                 "uploads) older than the grace period and "
                                 "the emptied buckets of purged projects (a bucket of no "
                                 "project is only reported).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Report only: flag nothing, delete nothing, audit nothing, "
                                 "email nothing.")
        parser.add_argument("--no-email", action="store_true",
                            help="Do not email the report to the operators.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options):
        if options["delete"] and options["dry_run"]:
            raise CommandError("--delete and --dry-run exclude each other.")
        unit = None
        if options["unit"]:
            try:
                unit = unit_find(options["unit"])
            except DDSError as exc:
                raise CommandError(exc.message) from None
        report = storage_reconcile(unit=unit, delete=options["delete"],
                                   dry_run=options["dry_run"])
        if not options["dry_run"] and not options["no_email"]:
            if not storage_reconcile_report_send(report=report):
                self.stderr.write("DDS_OPERATOR_EMAILS is empty: the report was not emailed.")
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(_render(report))
        if report.errors:  # findings never fail the run; storage we could not read does
            raise CommandError(f"{len(report.errors)} store(s)/bucket(s) could not be "
                               f"reconciled: {'; '.join(report.errors)[:500]}")
