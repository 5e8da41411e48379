import io
import json
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, Unit, User
from accounts.tests.helpers import PortalClient, last_code
from audit.services import audit_verify
from projects.models import Project


@pytest.mark.django_db
def test_demo_data_is_idempotent(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    first = capsys.readouterr().out
    counts = (Unit.objects.count(), User.objects.count(), Project.objects.count())
    call_command("demo_data")
    second = capsys.readouterr().out
    assert (Unit.objects.count(), User.objects.count(), Project.objects.count()) == counts
    assert counts == (1, 5, 1)
    assert first == second  # same credentials printed again

    creds_file = tmp_path / "demo-credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    creds = json.loads(creds_file.read_text())
    admin = User.objects.get(username="demo-unitadmin")
    assert admin.role == Role.UNIT_ADMIN and admin.check_password(creds["demo-unitadmin"])
    unit = Unit.objects.get()
    assert unit.staff.filter(role=Role.UNIT_ADMIN).count() == 2
    assert unit.storage_locations.filter(is_active=True).count() == 1
    project = Project.objects.get()
    assert project.memberships.filter(user__username="demo-researcher").exists()
    assert audit_verify().ok


@pytest.mark.django_db
def test_demo_unit_admin_logs_into_the_admin_with_a_second_factor(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    creds = json.loads((tmp_path / "demo-credentials.json").read_text())
    client = PortalClient()
    # The admin's own password-only login is gone: it sends staff to the portal login.
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
    response = client.post(response["Location"], {"username": "demo-unitadmin",
                                                "password": creds["demo-unitadmin"]})
    assert response.status_code == 302 and response.url == "/accounts/login/code/"
    assert client.get("/admin/").status_code == 302  # password alone is not enough
    response = client.post("/accounts/login/code/",
                           {"code": last_code("demo-unitadmin@example.org")})
    assert response.status_code == 302 and response.url == "/admin/"
    page = client.get("/admin/projects/project/").content.decode()
    assert "demo-00001" in page


@pytest.mark.django_db
@pytest.mark.parametrize(("debug", "embedded"), [(True, False), (False, True)])
def test_demo_data_runs_with_debug_or_the_embedded_default(settings, tmp_path, debug,
                                                           embedded):
    settings.VAR_DIR, settings.DEBUG, settings.DDS_ALLOW_EMBEDDED = tmp_path, debug, embedded
    call_command("demo_data", stdout=io.StringIO())
    assert Unit.objects.filter(internal_ref="demo").exists()


@pytest.mark.django_db
def test_demo_data_is_refused_in_a_deployment(settings, tmp_path):
    """DEBUG off and no DDS_ALLOW_EMBEDDED: no demo Super Admin, no password in the logs."""
    settings.VAR_DIR, settings.DEBUG, settings.DDS_ALLOW_EMBEDDED = tmp_path, False, False
    out = io.StringIO()
    with pytest.raises(CommandError, match="DEBUG=1.*DDS_ALLOW_EMBEDDED=1"):
        call_command("demo_data", stdout=out)
    assert out.getvalue() == ""
    assert not Unit.objects.exists() and not User.objects.exists()
    assert not (tmp_path / "demo-credentials.json").exists()
