"""Create (or show) the demo unit, its people and a project. Safe to run repeatedly.

Passwords are generated at random on first creation and kept in var/ (mode 0600), so a
rerun prints the same credentials instead of resetting them; none is written in code.

Only for the demo: it refuses to run unless DEBUG is on or the embedded default is allowed
(DDS_ALLOW_EMBEDDED), so a deployment never gets a demo Super Admin whose password is in
its logs.
"""

from __future__ import annotations

import json
import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Role, Unit, User
from accounts.services import unit_create, user_create
from projects.models import Project
from projects.services import project_create
from transfers.services import storage_location_create_local

DEMO_UNIT = {"name": "Demo Facility", "display_name": "Demo Sequencing Facility",
             "contact_email": "facility@example.org", "internal_ref": "demo"}
DEMO_USERS = [
    ("demo-superadmin", "Demo Operator", Role.SUPER_ADMIN),
    ("demo-unitadmin", "Demo Unit Admin", Role.UNIT_ADMIN),
    ("demo-unitadmin2", "Second Unit Admin", Role.UNIT_ADMIN),
    ("demo-personnel", "Demo Unit Personnel", Role.UNIT_PERSONNEL),
    ("demo-researcher", "Demo Researcher", Role.RESEARCHER),
]
DEMO_PROJECT_TITLE = "Demo delivery"


def _new_password() -> str:
    # Meets the password policy (accounts.validators): upper, lower, symbol, long enough.
    return "Dds-" + secrets.token_urlsafe(15)


class Command(BaseCommand):
    help = ("Create the demo unit, users and project (idempotent) and print the credentials. "
            "Demo only: refused unless DEBUG=1 or DDS_ALLOW_EMBEDDED=1.")

    def _credentials_path(self):
        return settings.VAR_DIR / "demo-credentials.json"

    def _load_credentials(self) -> dict[str, str]:
        path = self._credentials_path()
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_credentials(self, creds: dict[str, str]) -> None:
        path = self._credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh, indent=2)

    def handle(self, *args, **options):
        if not (settings.DEBUG or settings.DDS_ALLOW_EMBEDDED):
            raise CommandError(
                "demo_data is for the demo only: it creates a demo unit, a Super Admin and "
                "demo accounts and prints their passwords. It runs with DEBUG=1 or on the "
                "embedded default (DDS_ALLOW_EMBEDDED=1), never in a deployment; nothing "
                "was created.")
        creds = self._load_credentials()
        with transaction.atomic():
            unit = Unit.objects.filter(internal_ref=DEMO_UNIT["internal_ref"]).first()
            if unit is None:
                unit = unit_create(
                    name=DEMO_UNIT["name"], display_name=DEMO_UNIT["display_name"],
                    contact_email=DEMO_UNIT["contact_email"],
                    internal_ref=DEMO_UNIT["internal_ref"])
                storage_location_create_local(unit=unit, by=None)
            users = {}
            for username, name, role in DEMO_USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    password = creds.get(username) or _new_password()
                    user = user_create(username=username, email=f"{username}@example.org",
                                       name=name, password=password, role=role,
                                       unit=unit if role in (Role.UNIT_ADMIN,
                                                             Role.UNIT_PERSONNEL) else None)
                    creds[username] = password
                users[username] = user
            project = Project.objects.filter(unit=unit, title=DEMO_PROJECT_TITLE).first()
            if project is None:
                project = project_create(
                    unit=unit, by=users["demo-unitadmin"], title=DEMO_PROJECT_TITLE,
                    description="A project to try the system with.", pi="Demo Researcher",
                    owners=[users["demo-researcher"]], force=True)
        self._save_credentials(creds)

        self.stdout.write(self.style.SUCCESS(f"Demo unit: {unit.display_name} "
                                             f"(project {project.public_id})"))
        for username, _name, role in DEMO_USERS:
            password = creds.get(username, "(set before; not stored here)")
            self.stdout.write(f"  {Role(role).label:16} {username:18} {password}")
        self.stdout.write(f"Credentials are kept in {self._credentials_path()} (mode 0600).")
