"""Announcements with the real `dds`: a Super Admin's message of the day reaches a
researcher once per login session (on stderr, stdout untouched), is emailed to a unit,
and maintenance mode turns everyone but the operator away with a clear message."""

from __future__ import annotations

import json
import stat
import time

import pytest
from django.core import mail

from accounts.models import Role
from keys.tests.helpers import keyed_user
from tests.e2e.conftest import DDS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(e2e):
    user, password, _ = keyed_user(Role.SUPER_ADMIN)
    dds = DDS(e2e.url, e2e.tmp / "operator-config", user, password)
    dds.login()
    return dds


def _ok(r):
    assert r.code == 0, (r.code, r.out, r.err)
    return r


def test_motd_shown_once_per_session(e2e, operator):
    researcher = e2e.researcher
    first = json.loads(_ok(operator("motd", "add", "Storage upgrade on Friday", "--json")).out)
    assert first["is_active"] is True

    researcher.login()
    r = _ok(researcher("project", "ls", "--json"))
    json.loads(r.out)  # stdout stays one JSON document
    assert r.err.count("Storage upgrade on Friday") == 1
    assert "Message of the day" in r.err
    r = _ok(researcher("project", "ls", "--json"))
    assert "Storage upgrade on Friday" not in r.err  # once per session
    # What was shown is remembered per session, in a private file without the token.
    state = researcher.config / "state" / "motd.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    token = json.loads((researcher.config / "token.json").read_text())
    remembered = state.read_text()
    assert token["access"] not in remembered and token["refresh"] not in remembered
    assert json.loads(remembered)["seen"] == [first["id"]]

    # A new message is shown once, the old one not again.
    _ok(operator("motd", "add", "Back to normal [soon]", "--json"))
    r = _ok(researcher("project", "ls"))
    assert "Back to normal [soon]" in r.err and "Storage upgrade" not in r.err
    assert "Back to normal" not in r.out

    # The listing itself (everyone may read it) shows both, newest first.
    listed = json.loads(_ok(researcher("motd", "ls", "--json")).out)
    assert [m["message"] for m in listed] == ["Back to normal [soon]",
                                              "Storage upgrade on Friday"]
    # A new login is a new session: the active messages are shown once more.
    researcher.login()
    r = _ok(researcher("project", "ls"))
    assert "Storage upgrade on Friday" in r.err and "Back to normal [soon]" in r.err

    # Deactivated: no longer listed or shown; only the operator sees it with --all.
    _ok(operator("motd", "deactivate", str(first["id"]), "--json"))
    assert [m["id"] for m in json.loads(_ok(researcher("motd", "ls", "--json")).out)] \
        != [first["id"]]
    r = researcher("motd", "ls", "--all", "--json")
    assert r.code == 5 and json.loads(r.out)["error"]["code"] == "not_allowed"
    every = json.loads(_ok(operator("motd", "ls", "--all", "--json")).out)
    assert {m["id"]: m["is_active"] for m in every}[first["id"]] is False

    # Adding is the operator's: a researcher gets a clear refusal (exit status 5).
    r = researcher("motd", "add", "Mine")
    assert r.code == 5 and "Super Admin" in r.err


def test_motd_send_to_a_unit(e2e, operator):
    motd = json.loads(_ok(operator("motd", "add", "Unit meeting at 10", "--json")).out)
    # Without a terminal it must be confirmed with --yes.
    r = operator("motd", "send", str(motd["id"]), "--unit", e2e.unit.name)
    assert r.code == 2 and "--yes" in r.err
    before = len(mail.outbox)
    r = _ok(operator("motd", "send", str(motd["id"]), "--unit", e2e.unit.name, "--yes",
                     "--json"))
    sent = json.loads(r.out)
    assert sent["recipients"] == 2  # the unit's two admins
    deadline = time.monotonic() + 30
    while len(mail.outbox) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    emails = [m for m in mail.outbox[before:] if "Unit meeting at 10" in m.body]
    assert len(emails) == 2 and all(len(m.to) == 1 for m in emails)
    assert e2e.staff.user.email in {m.to[0] for m in emails}
    r = operator("motd", "send", "999999", "--yes")
    assert r.code == 5 and "no message of the day" in r.err


def test_maintenance_mode(e2e, operator):
    researcher = e2e.researcher
    researcher.login()
    _ok(researcher("project", "ls"))

    r = _ok(operator("maintenance", "on", "--message", "Back at noon.", "--json"))
    assert json.loads(r.out)["active"] is True
    r = researcher("project", "ls")
    assert r.code == 5, (r.out, r.err)
    assert "Under maintenance: Back at noon." in r.err and "Traceback" not in r.err
    r = researcher("project", "ls", "--json")
    assert r.code == 5 and json.loads(r.out)["error"] == {
        "code": "maintenance", "message": "Under maintenance: Back at noon."}
    # Anyone signed in may ask what is going on; the operator carries on working.
    r = _ok(researcher("maintenance", "status"))
    assert "on" in r.out and "Back at noon." in r.out
    _ok(operator("project", "ls"))
    status = json.loads(_ok(operator("maintenance", "status", "--json")).out)
    assert status["active"] is True and status["message"] == "Back at noon."
    r = researcher("maintenance", "off")
    assert r.code == 5 and "Back at noon." in r.err

    r = _ok(operator("maintenance", "off"))
    assert "off" in r.err
    _ok(researcher("project", "ls"))
    assert json.loads(_ok(researcher("maintenance", "status", "--json")).out)["active"] is False


class _Api:
    """Stands in for cli.client.Api: records how it was asked, answers as told."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def request(self, method, path, **kwargs):
        self.calls.append((method, path, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self

    def json(self):
        return self.answer


def test_a_failing_fetch_never_fails_the_command(tmp_path, monkeypatch, capsys):
    from cli import announce, config
    from cli.errors import Refused, Unreachable

    monkeypatch.setenv("DDS_CONFIG_DIR", str(tmp_path))
    config.save_token({"url": "http://dds.test", "username": "u", "access": "a.b.c",
                       "refresh": "r", "saved_at": "2026-12-01T00:00:00+00:00"})
    for failure in (Unreachable("down"), Refused("Back at noon.", status=503,
                                                code="maintenance"), ValueError("not json")):
        api = _Api(failure)
        announce.show_new(None, api)  # no exception
        [(method, path, kwargs)] = api.calls
        assert (method, path) == ("GET", "motd") and kwargs["timeout"] <= 3
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "motd.json").write_text("{damaged")
    (tmp_path / "state" / "motd.json").chmod(0o600)
    capsys.readouterr()
    # A damaged state file is started afresh, not a reason to stop showing messages.
    announce.show_new(None, _Api([{"id": 1, "message": "Hi there", "created_at": None}]))
    shown = capsys.readouterr()
    assert shown.out == "" and "Hi there" in shown.err  # stdout stays the command's
    assert json.loads((tmp_path / "state" / "motd.json").read_text())["seen"] == [1]
    # Answers of an unexpected shape are ignored too.
    announce.show_new(None, _Api({"detail": "odd"}))
    announce.show_new(None, _Api([{"id": "x"}, "junk"]))
