from django.core.management.base import BaseCommand, CommandError

from projects.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the hash chain of the audit log; exits non-zero if it was tampered with."

    def handle(self, *args, **options):
        result = audit_verify()
        if not result.ok:
            where = f" at event {result.first_bad_id}" if result.first_bad_id else ""
            raise CommandError(f"audit log is NOT intact{where}: {result.reason} "
                               f"({result.checked} events verified before it)")
        self.stdout.write(self.style.SUCCESS(f"audit log intact: {result.checked} events"))
