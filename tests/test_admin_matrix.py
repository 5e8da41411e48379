"""The admin's permission matrix: every registered model × every role × every admin view.

The expected answers below are the policy, written independently of the admin classes:
who may list, add, change and delete each model, and who may see one object of unit A.
A model registered on the admin site without a row here fails the test, and so does any
page that shows a secret (TOTP key, email code, wrapped keys, sealed credentials,
Crypt4GH headers, password hashes).
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import MOTD, EmailDevice, Maintenance, Role, TOTPDevice, User
from accounts.tests.helpers import portal_login
from keys.services import user_kek_derive
from reports.models import StatsSnapshot
from tests.permission_matrix import build_world

pytestmark = pytest.mark.django_db

S, UA, UP, OB = "super_admin", "unit_admin", "personnel", "other_unit_staff"
STAFF = (S, UA, UP, OB)
ACTORS = (*STAFF, "researcher", "anonymous")
A_STAFF = {S, UA, UP}  # who sees an object of unit A


def policy(view=STAFF, add=(), change=(), delete=(), visible=A_STAFF):
    return {"view": set(view), "add": set(add), "change": set(change),
            "delete": set(delete), "visible": set(visible)}


READ_ONLY = policy()
SUPER_ONLY = policy(view={S}, add={S}, change={S}, delete={S}, visible={S})

# The admin deletes nothing whose deletion has a service (projects, users, units, invites,
# storage locations: audited, storage and keys cleaned up); MOTDs are deleted through
# theirs (accounts.admin_base.ScopedAdmin.delete_via_service); the maintenance row is not
# deleted (it keeps when maintenance was last switched).
# Users and invites are not added in the admin either: the invite service makes them.
POLICY = {
    "accounts.unit": policy(add={S}, change={S, UA}),
    "accounts.user": policy(change={S, UA}),
    "accounts.invite": policy(change={S}),
    "accounts.motd": SUPER_ONLY,
    "accounts.maintenance": policy(view={S}, add={S}, change={S}, visible={S}),
    # The operator holds no project keys, so cannot create a project (unit staff do).
    "projects.project": policy(add={UA, UP, OB}, change={S, UA, UP}),
    "projects.projectstatusevent": READ_ONLY,
    "audit.auditevent": READ_ONLY,
    "keys.projectuserkey": READ_ONLY,
    "keys.inviteprojectkey": READ_ONLY,
    "transfers.storagelocation": policy(add={S}, change={S}),
    "transfers.file": READ_ONLY,
    "transfers.fileversion": READ_ONLY,
    "transfers.upload": READ_ONLY,
    "transfers.usage": READ_ONLY,
    # Statistics of the whole system: the operator's only.
    "reports.statssnapshot": policy(view={S}, visible={S}),
}


@pytest.fixture
def admin_world():
    from accounts.services import user_create
    from audit.models import AuditEvent
    from projects.models import ProjectStatusEvent
    from projects.services import invite_to_project
    from transfers.models import FileVersion, StorageLocation, Upload, Usage
    from transfers.services import storage_location_save
    from transfers.tests.factories import FileFactory

    world = build_world()
    project = world.project
    ua = world.users[UA]
    kek = user_kek_derive(user=ua, password=world.password)
    invite = invite_to_project(email="invitee@example.org", role=Role.RESEARCHER, by=ua,
                               by_kek=kek, project=project).invite
    location = storage_location_save(
        location=StorageLocation(unit=world.unit_a, name="s3", region="se",
                                 endpoint="https://s3.example.se"),
        by=world.users[S], access_key="ACCESS-" + secrets.token_hex(8),
        secret_key="SECRET-" + secrets.token_hex(16))
    f = FileFactory(project=project, header=secrets.token_bytes(124))
    now = timezone.now()
    objects = {
        "accounts.unit": world.unit_a,
        "accounts.user": world.target_staff,
        "accounts.invite": invite,
        "accounts.motd": MOTD.objects.create(message="Hello", is_active=False),
        "accounts.maintenance": Maintenance.current(),
        "projects.project": project,
        "projects.projectstatusevent": ProjectStatusEvent.objects.create(
            project=project, status=project.status, by=ua),
        "audit.auditevent": AuditEvent.objects.filter(project=project).first(),
        "keys.projectuserkey": project.user_keys.first(),
        "keys.inviteprojectkey": invite.project_keys.first(),
        "transfers.storagelocation": location,
        "transfers.file": f,
        "transfers.fileversion": FileVersion.objects.create(
            project=project, file=f, object_key=f.object_key, size_stored=f.size_stored),
        "transfers.upload": Upload.objects.create(
            public_id=secrets.token_hex(8), project=project, path="up/x.bin",
            object_key="obj-up-" + secrets.token_hex(4), size_original=10,
            reserved_bytes=10, part_size=65564, created_by=ua),
        "transfers.usage": Usage.objects.create(project=project, period_start=now
                                                - timedelta(days=30), period_end=now,
                                                byte_hours=5),
        "reports.statssnapshot": StatsSnapshot.objects.create(
            month=now.date().replace(day=1), as_of=now, units=1),
    }
    # Second-factor secrets that must never be shown: an authenticator app (of a user who
    # does not log in here) and a pending email code.
    device = TOTPDevice.new(user=world.users["admin2"])
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    email_device, _ = EmailDevice.objects.get_or_create(user=world.users[UP],
                                                        defaults={"name": "email"})
    code = email_device.code_new(length=8, valid_secs=900)
    world.users["researcher_plain"] = user_create(
        username="mx-plain", email="plain@example.org", name="Plain",
        password=world.password, role=Role.RESEARCHER)
    return world, objects, {"totp_key": device.bin_key, "email_code": code}


def _secrets(extra) -> list[str]:
    """Every value that must not appear in any admin page."""
    found = [base64.b32encode(extra["totp_key"]).decode(), extra["totp_key"].hex()]
    found += list(User.objects.values_list("password", flat=True))
    found += [h for h in EmailDevice.objects.values_list("code_hash", flat=True) if h]
    for model in apps.get_models():
        binaries = [f.name for f in model._meta.get_fields()
                    if isinstance(f, models.BinaryField)]
        for name in binaries:
            for value in model.objects.values_list(name, flat=True):
                if value:
                    raw = bytes(value)
                    found += [raw.hex()[:48], base64.b64encode(raw).decode()[:40],
                              base64.urlsafe_b64encode(raw).decode()[:40]]
    return [s for s in found if s]


def _clients(world) -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for actor in (*STAFF, "researcher"):
        client = Client()
        portal_login(client, world.users[actor], world.password)
        clients[actor] = client
    return clients


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _url(model, view: str, obj=None) -> str:
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"
    return reverse(name, args=[obj.pk] if obj is not None else [])


def _expected(rule, actor: str, view: str) -> int:
    if actor in ("anonymous", "researcher"):
        return 302  # to the portal's login
    if view == "changelist":
        return 200 if actor in rule["view"] else 403
    if view == "add":
        return 200 if actor in rule["add"] else 403
    if actor not in rule["visible"]:
        return 404
    if view == "delete":
        return 200 if actor in rule["delete"] else 403
    return 200  # change (read-only for those without change) and history


def test_every_registered_model_has_a_policy():
    registered = {_label(m) for m in admin.site._registry}
    assert registered == set(POLICY), (
        f"admin models without a policy row: {sorted(registered - set(POLICY))}; "
        f"rows for unregistered models: {sorted(set(POLICY) - registered)}")


def test_admin_matrix_every_model_role_and_view(admin_world):
    world, objects, extra = admin_world
    clients = _clients(world)
    forbidden = _secrets(extra)
    failures: list[str] = []
    models_by_label = {_label(m): m for m in admin.site._registry}
    for label, rule in sorted(POLICY.items()):
        model, obj = models_by_label[label], objects[label]
        assert obj is not None, label
        for actor in ACTORS:
            client = clients[actor]
            for view, target in (("changelist", None), ("add", None), ("change", obj),
                                 ("delete", obj), ("history", obj)):
                response = client.get(_url(model, view, target))
                expected = _expected(rule, actor, view)
                if response.status_code != expected:
                    failures.append(f"{label} {view} as {actor}: expected {expected}, got "
                                    f"{response.status_code}")
                if response.status_code == 200:
                    page = response.content.decode(errors="replace")
                    leaked = [s[:12] + "…" for s in forbidden if s in page]
                    if leaked or "memory at 0x" in page:
                        failures.append(f"{label} {view} as {actor} shows a secret: "
                                        f"{leaked or 'a raw BinaryField'}")
            # A change posted by someone without the right is refused and changes nothing.
            if actor in STAFF and actor not in rule["change"]:
                response = client.post(_url(model, "change", obj), {})
                allowed = (404,) if actor not in rule["visible"] else (403,)
                if response.status_code not in allowed:
                    failures.append(f"{label} change POST as {actor}: expected {allowed}, "
                                    f"got {response.status_code}")
    assert not failures, "admin matrix mismatches:\n" + "\n".join(failures)


def test_admin_site_pages_and_foreign_admins(admin_world):
    world, _, _ = admin_world
    clients = _clients(world)
    for actor in ACTORS:
        client = clients[actor]
        index = client.get(reverse("admin:index"))
        assert index.status_code == (200 if actor in STAFF else 302), actor
        # django-otp's device admins (which showed TOTP keys) and Django's Group admin are
        # not served at all.
        for path in ("/admin/otp_totp/totpdevice/", "/admin/otp_email/emaildevice/",
                     "/admin/auth/group/", "/admin/accounts/totpdevice/",
                     "/admin/accounts/emaildevice/", "/admin/accounts/outboundemail/"):
            assert client.get(path).status_code in (302, 404), (actor, path)
        # Password changes go through the portal (which re-wraps the key pair).
        change = client.get(reverse("admin:password_change"))
        assert change.status_code == 302
        if actor in STAFF:
            assert change["Location"] == reverse("accounts:password-change")
    for app_label in {m._meta.app_label for m in admin.site._registry}:
        assert clients[S].get(reverse("admin:app_list", args=[app_label])).status_code == 200
        assert clients["researcher"].get(
            reverse("admin:app_list", args=[app_label])).status_code == 302
    with pytest.raises(NoReverseMatch):
        reverse("admin:otp_totp_totpdevice_changelist")


def test_admin_logout_ends_the_key_session(admin_world):
    from accounts.models import AuthSession

    world, _, _ = admin_world
    client = Client()
    portal_login(client, world.users[UA], world.password)
    response = client.post(reverse("admin:logout"))
    assert response.status_code == 307 and response["Location"] == reverse("accounts:logout")
    client.post(response["Location"])
    assert not AuthSession.objects.filter(user=world.users[UA], ended_at__isnull=True,
                                          kind="portal").exists()
    assert client.get(reverse("admin:index")).status_code == 302
