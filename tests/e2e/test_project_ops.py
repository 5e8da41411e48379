"""Facility operations on projects with the real `dds`: a project created with people who
have no account yet, access granted without email, and the projects with work in flight."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from accounts.models import Invite
from accounts.tests.helpers import api_login, bearer
from keys.models import InviteProjectKey
from projects.models import Project
from transfers.tests.helpers import start

pytestmark = pytest.mark.django_db(transaction=True)


def _mails_to(email):
    return [m for m in mail.outbox if email in m.to]


def test_create_invites_grant_without_mail_and_busy(e2e):
    staff = e2e.staff
    staff.login()

    # Nothing in flight yet: said so, and success.
    idle = staff("project", "status", "busy")
    assert idle.code == 0, idle.err
    assert "No project has work in flight" in idle.err and idle.out == ""
    assert json.loads(staff("project", "status", "busy", "--json").out) == []

    created = staff("project", "create", "-t", "Newcomers", "--force",
                    "--researcher", "new@example.org", "--owner", "new2@example.org",
                    "--researcher", e2e.researcher.user.email)
    assert created.code == 0, created.err
    project_id = created.out.strip()
    project = Project.objects.get(public_id=project_id)
    assert "invited new@example.org" in created.err
    assert "invited new2@example.org as owner" in created.err
    assert f"added {e2e.researcher.user.username}" in created.err
    for email in ("new@example.org", "new2@example.org"):
        invite = Invite.objects.get(email=email)
        assert InviteProjectKey.objects.filter(invite=invite, project=project).exists()
        [message] = _mails_to(email)
        assert "/accounts/register/?t=" in message.body

    quiet = staff("project", "create", "-t", "Quiet", "--force", "--researcher",
                  "hush@example.org", "--no-mail", "--json")
    assert quiet.code == 0, quiet.err
    assert [i["email"] for i in json.loads(quiet.out)["invited"]] == ["hush@example.org"]
    assert Invite.objects.filter(email="hush@example.org").exists()
    assert _mails_to("hush@example.org") == []

    granted = staff("project", "access", "grant", "-p", project_id,
                    "-e", "quiet@example.org", "--no-mail")
    assert granted.code == 0, granted.err
    assert "Invited quiet@example.org" in granted.err and "No email was sent" in granted.err
    assert Invite.objects.filter(email="quiet@example.org").exists()
    assert _mails_to("quiet@example.org") == []
    as_json = staff("project", "access", "grant", "-p", project_id, "-e",
                    "quiet@example.org", "--owner", "--no-mail", "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out)["owner"] is True
    assert _mails_to("quiet@example.org") == []

    # An upload started over the API puts the project on the busy list.
    client = bearer(api_login(staff.user, staff.password)["access"])
    started = start(client, project, "reads/a.fastq", 1000)
    assert started.status_code == 201, started.content
    busy = staff("project", "status", "busy")
    assert busy.code == 0, busy.err
    assert project_id in busy.out and "1 upload" in busy.out
    [row] = json.loads(staff("project", "status", "busy", "--json").out)
    assert row["id"] == project_id and row["uploads"] == 1 and row["since"]

    # Researchers are told it is not for them.
    e2e.researcher.login()
    refused = e2e.researcher("project", "status", "busy")
    assert refused.code != 0 and "unit staff and operators" in refused.err
