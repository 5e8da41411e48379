"""Usability defects a reviewer reproduced against the demo server, in-process against the
fake API: rerun hints only where a rerun helps, ``project ls --status``, times and labels
(the "Times" rule of docs/cli.md), ``--url`` without a scheme, non-interactive and
interactive login codes, and messages that name the CLI's options."""

from __future__ import annotations

import json

import pytest

from cli.errors import Exit
from cli.output import err, label, when
from cli.transfer import Summary

# ------------------------------------------------------------ rerun hints (defect 1)


def test_a_missing_source_is_a_usage_error_before_any_request(logged_in, dds, tmp_path):
    r = dds("data", "put", "-p", "demo-00001", "-s", str(tmp_path / "nonexistent"))
    assert r.exit_code == Exit.USAGE
    assert "Nothing to upload: " in r.stderr and "no such file or directory" in r.stderr
    assert "To retry" not in r.stderr and "same command again" not in r.stderr
    assert logged_in.seen == []
    r = dds("data", "put", "-p", "demo-00001", "-s", str(tmp_path / "nonexistent"), "--json")
    assert r.exit_code == Exit.USAGE
    assert json.loads(r.stdout)["error"]["code"] == "usage"


def test_a_link_loop_in_a_folder_is_not_worth_a_rerun(logged_in, dds, tmp_path):
    (tmp_path / "run" / "a").mkdir(parents=True)
    (tmp_path / "run" / "a" / "up").symlink_to(tmp_path / "run")
    r = dds("data", "put", "-p", "demo-00001", "-s", str(tmp_path / "run"),
            "-s", str(tmp_path / "nonexistent"))
    assert "nonexistent: no such file or directory" in r.stderr
    assert r.exit_code == Exit.PARTIAL
    assert "symbolic link loop" in r.stderr
    assert "To retry" not in r.stderr
    assert "will not help: fix the paths shown first" in r.stderr


def test_a_project_path_that_does_not_exist_is_not_worth_a_rerun(logged_in, dds, tmp_path):
    logged_in.on("POST", "projects/demo-00002/files/download",
                 {"files": [], "missing": ["nothere"], "next": None})
    r = dds("data", "get", "-p", "demo-00002", "-s", "nothere", "-d", str(tmp_path / "o"))
    assert r.exit_code == Exit.PARTIAL
    assert "no such file or folder in the project" in r.stderr
    assert "dds data ls -p demo-00002" in r.stderr
    assert "To retry" not in r.stderr and "will not help" in r.stderr


def _report(summary: Summary) -> str:
    with err.capture() as captured:
        summary.report(err, "uploaded", "run the same command again")
    return captured.get()


def test_the_hint_counts_what_a_rerun_cannot_fix():
    summary = Summary()
    summary.fail("a", "connection reset")  # worth a rerun
    summary.fail("b", "symbolic link loop", unusable=True)
    summary.fail("c", "only while In Progress", status=400)
    text = _report(summary)
    assert "To retry: run the same command again" in text
    assert "1 of them were refused by the server and 1 of them is a path that cannot be " \
           "used as given: fix the reason shown first" in text

    only_paths = Summary()
    only_paths.fail("b", "symbolic link loop", unusable=True)
    assert "To retry" not in _report(only_paths)
    only_paths.fail("c", "refused", status=403)
    text = _report(only_paths)
    assert "To retry" not in text and "will not help until the reasons shown are fixed" in text

    refused = Summary()
    refused.fail("c", "refused", status=403)
    assert "The server refused them" in _report(refused)
    busy = Summary()
    busy.fail("d", "throttled", status=429)  # passes on its own
    assert "To retry" in _report(busy)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("DDS_TOKEN_PATH", "DDS_URL"):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------- project ls --status (defect 2)


@pytest.mark.parametrize(("given", "sent"), [
    ("in_progress", "in_progress"), ("In Progress", "in_progress"),
    ("in progress", "in_progress"), ("IN-PROGRESS", "in_progress"),
    ("Available", "available"), ("expired", "expired")])
def test_project_ls_status_takes_the_code_or_the_label(logged_in, dds, given, sent):
    logged_in.on("GET", "projects", [])
    r = dds("project", "ls", "--status", given, "--json")
    assert r.exit_code == 0, r.output
    assert logged_in.seen[-1].query == f"status={sent}"


def test_project_ls_refuses_an_unknown_status(logged_in, dds):
    r = dds("project", "ls", "--status", "bogus")
    assert r.exit_code == Exit.USAGE
    assert "'bogus' is not one of In Progress (in_progress), Available (available)" in r.stderr
    assert logged_in.seen == []


# ------------------------------------------------------------ times and labels (defect 3)

JOINED = "2026-12-02T07:19:21.919005+01:00"
EXPIRES = "2026-12-09T10:00:00.123456Z"


def test_auth_info_shows_times_in_the_local_zone(logged_in, dds):
    me = {"username": "alice", "name": "Alice", "email": "a@uni.se",
          "role_label": "Unit Admin", "unit": "NGI", "second_factor": "email",
          "has_keys": True, "date_joined": JOINED, "last_login": EXPIRES, "projects": []}
    logged_in.on("GET", "me", me)
    r = dds("auth", "info")
    assert r.exit_code == 0, r.output
    assert JOINED not in r.stdout and EXPIRES not in r.stdout
    assert when(JOINED) in r.stdout and when(EXPIRES) in r.stdout
    assert json.loads(dds("user", "info", "--json").stdout)["date_joined"] == JOINED


@pytest.mark.parametrize("command", [("user", "ls", "-p", "demo-00001"),
                                     ("project", "access", "ls", "-p", "demo-00001")])
def test_pending_invites_expire_in_the_local_zone(logged_in, dds, command):
    logged_in.on("GET", "projects/demo-00001/members", {
        "members": [], "invites": [{"email": "new@uni.se", "owner": False,
                                    "expires_at": EXPIRES}]})
    r = dds(*command)
    assert r.exit_code == 0, r.output
    assert EXPIRES not in r.stdout and when(EXPIRES) in r.stdout
    r = dds(*command, "--json")
    assert json.loads(r.stdout)["invites"][0]["expires_at"] == EXPIRES


def test_status_display_shows_labels_like_the_other_commands(logged_in, dds):
    logged_in.on("GET", "projects/demo-00001/status", {
        "status": "in_progress", "deadline": None, "history": [
            {"at": JOINED, "status": "available", "by": "alice", "deadline": EXPIRES,
             "aborted": False},
            {"at": EXPIRES, "status": "in_progress", "by": "alice", "deadline": None,
             "aborted": False}]})
    r = dds("project", "status", "display", "-p", "demo-00001", "--history")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "demo-00001: In Progress"
    assert "in_progress" not in r.stdout and "available" not in r.stdout
    assert "Available" in r.stdout
    r = dds("project", "status", "display", "-p", "demo-00001", "--json")
    assert json.loads(r.stdout) == {"status": "in_progress", "deadline": None}


def test_user_ls_shows_role_labels(logged_in, dds):
    users = [{"username": "eve", "name": "Eve", "email": "eve@f.se", "role": "unit_personnel",
              "unit": "NGI", "is_active": True, "second_factor": "email",
              "date_joined": JOINED, "last_login": None},
             {"username": "bob", "name": "Bob", "email": "bob@uni.se", "role": "researcher",
              "unit": None, "is_active": True, "second_factor": "totp",
              "date_joined": JOINED, "last_login": None}]
    logged_in.on("GET", "users", users)
    r = dds("user", "ls")
    assert r.exit_code == 0, r.output
    assert "Unit Personnel" in r.stdout and "Researcher" in r.stdout
    assert "unit_personnel" not in r.stdout
    assert json.loads(dds("user", "ls", "--json").stdout)[0]["role"] == "unit_personnel"


def test_label_is_the_one_rule_for_codes():
    assert label("in_progress") == "In Progress"
    assert label("unit_personnel") == "Unit Personnel"
    assert label("super_admin") == "Super Admin"
    assert label(None) == "–"


# --------------------------------------------------------- --url without a scheme (defect 4)


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "localhost:8000", "dds.example.org",
                                 "ftp://dds.example.org", "https://"])
def test_a_url_without_its_scheme_is_a_usage_error(api, dds, url, monkeypatch):
    r = dds("--url", url, "auth", "login", "-u", "alice")
    assert r.exit_code == Exit.USAGE, r.output
    assert f"--url {url!r} is not a server address" in r.stderr
    assert "https://" in r.stderr and "http:// for a local test server" in r.stderr
    assert "Cannot reach" not in r.stderr
    monkeypatch.setenv("DDS_URL", url)
    r = dds("project", "ls", "--json")
    assert r.exit_code == Exit.USAGE
    assert json.loads(r.stdout)["error"]["message"].startswith(f"DDS_URL {url!r}")
    assert api.seen == []


def test_http_and_https_urls_are_taken(logged_in, dds):
    logged_in.on("GET", "projects", [])
    assert dds("--url", logged_in.url + "/", "project", "ls").exit_code == 0
    assert dds("--url", "HTTPS://dds.example.org", "project", "ls").exit_code \
        == Exit.NOT_LOGGED_IN  # a login for another server: the address itself was fine


# ------------------------------------------------------------ login codes (defects 5, 6)

PENDING = "pending-token-value"
TOKENS = {"access": "new-access", "refresh": "new-refresh", "token_type": "Bearer",
          "access_expires_at": None, "refresh_expires_at": None}
WRONG = {"detail": "The code is wrong, expired or already used.", "code": "invalid_code"}


def _serve_login(api, second_factor: str) -> None:
    api.on("POST", "auth/login", {"pending_token": PENDING, "second_factor": second_factor,
                                  "detail": "Enter the code."})
    api.on("POST", "auth/2fa", TOKENS)


def test_an_emailed_code_cannot_come_before_the_login(api, dds, monkeypatch):
    _serve_login(api, "email")
    monkeypatch.setenv("DDS_PASSWORD", "pw")
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="")
    assert r.exit_code == Exit.USAGE
    assert "nothing on standard input, and the code was emailed just now" in r.stderr
    assert "keep standard input open until you type it" in r.stderr
    assert "--code or DDS_2FA_CODE only take an authenticator app's code" in r.stderr
    # A code given in advance is an earlier login's: not sent (it would count as a wrong
    # one); the code this login emailed is read instead.
    r = dds("--url", api.url, "auth", "login", "-u", "alice", "--code", "11112222",
            input="33334444\n")
    assert r.exit_code == 0, r.output
    assert "yours are emailed" in r.stderr
    assert [s.body for s in api.seen if s.path == "auth/2fa"][-1] == {"code": "33334444"}
    assert "11112222" not in str([s.body for s in api.seen])


def test_an_app_code_by_option_environment_or_stdin(api, dds, monkeypatch):
    _serve_login(api, "totp")
    monkeypatch.setenv("DDS_PASSWORD", "pw")
    assert dds("--url", api.url, "auth", "login", "-u", "alice", "--code", "123456",
               input="").exit_code == 0
    monkeypatch.setenv("DDS_2FA_CODE", "234567")
    assert dds("--url", api.url, "auth", "login", "-u", "alice", input="").exit_code == 0
    monkeypatch.delenv("DDS_2FA_CODE")
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="")
    assert r.exit_code == Exit.USAGE
    assert "Give your authenticator app's code with --code or DDS_2FA_CODE" in r.stderr
    assert [s.body["code"] for s in api.seen if s.path == "auth/2fa"] == ["123456", "234567"]


def test_a_wrong_code_without_a_terminal_says_to_log_in_again(api, dds, monkeypatch):
    _serve_login(api, "email")
    api.on("POST", "auth/2fa", WRONG, status=401)
    monkeypatch.setenv("DDS_PASSWORD", "pw")
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="99998888\n")
    assert r.exit_code == Exit.REFUSED
    assert ("The code is wrong, expired or already used. Run `dds auth login` again: it "
            "emails a new code.") in r.stderr
    assert [s.path for s in api.seen].count("auth/2fa") == 1


def test_a_wrong_code_at_the_terminal_can_be_typed_again(api, dds, monkeypatch):
    """The server keeps a pending login open after a wrong code (its lockout counts
    them): a terminal gets LOGIN_CODE_TRIES tries within the same pending login."""
    from cli.commands import auth

    monkeypatch.setattr(auth, "_on_terminal", lambda: True)
    monkeypatch.setenv("DDS_PASSWORD", "pw")
    _serve_login(api, "email")
    answers = iter([(401, WRONG), (200, TOKENS)])

    def answer(seen):
        if seen.path == "auth/2fa":
            api.on("POST", "auth/2fa", *reversed(next(answers)))

    api.before_answer = answer
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="11111111\n22222222\n")
    assert r.exit_code == 0, r.output
    assert "Try again (2 more)" in r.stderr and "Logged in" in r.stderr
    sent = [s for s in api.seen if s.path == "auth/2fa"]
    assert [s.body["code"] for s in sent] == ["11111111", "22222222"]
    assert {s.headers["Authorization"] for s in sent} == {f"Bearer {PENDING}"}
    assert [s.path for s in api.seen].count("auth/login") == 1  # the same pending login

    # Every try wrong: the last one ends it, saying what to do.
    api.before_answer = None
    api.on("POST", "auth/2fa", WRONG, status=401)
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="1\n2\n3\n4\n")
    assert r.exit_code == Exit.REFUSED
    assert r.stderr.count("Try again") == 2 and "Run `dds auth login` again" in r.stderr
    # A lockout ends the pending login at once: no more tries.
    api.on("POST", "auth/2fa", {"detail": "Too many failed attempts. Try again in 15 "
                                          "minutes.", "code": "locked"}, status=429)
    before = len(api.seen)
    r = dds("--url", api.url, "auth", "login", "-u", "alice", input="1\n2\n")
    assert r.exit_code == Exit.REFUSED and "Too many failed attempts" in r.stderr
    assert [s.path for s in api.seen[before:]].count("auth/2fa") == 1


# ------------------------------------------------------------------- wording (defect 7)

DEADLINE_400 = {"detail": "deadline_days: Ensure this value is less than or equal to 90.",
                "code": "invalid",
                "errors": {"deadline_days": ["Ensure this value is less than or equal to 90."]}}


def test_a_field_error_names_the_option(logged_in, dds):
    logged_in.on("POST", "projects/demo-00001/release", DEADLINE_400, status=400)
    r = dds("project", "status", "release", "-p", "demo-00001", "--deadline", "200")
    assert r.exit_code == Exit.REFUSED
    assert "--deadline: Ensure this value is less than or equal to 90." in r.stderr
    assert "deadline_days" not in r.stderr
    r = dds("project", "release", "-p", "demo-00001", "--deadline", "200", "--json")
    error = json.loads(r.stdout)["error"]
    assert error == {"code": "invalid",
                     "message": "--deadline: Ensure this value is less than or equal to 90."}

    logged_in.on("POST", "invites", {
        "detail": "email: Enter a valid email address.", "code": "invalid",
        "errors": {"email": ["Enter a valid email address."]}}, status=400)
    r = dds("user", "add", "not-an-address", "-r", "Researcher")
    assert r.exit_code == Exit.REFUSED and "EMAIL: Enter a valid email address." in r.stderr
    logged_in.on("POST", "projects", {
        "detail": "title: This field may not be blank.", "code": "invalid",
        "errors": {"title": ["This field may not be blank."], "other": ["Kept."]}}, status=400)
    r = dds("project", "create", "-t", "")
    assert "--title: This field may not be blank.; other: Kept." in r.stderr
    # An error that is no field's keeps the server's sentence.
    logged_in.on("POST", "projects/demo-00001/release",
                 {"detail": "cannot release: project is Available", "code": "conflict"},
                 status=409)
    r = dds("project", "release", "-p", "demo-00001")
    assert "Error: cannot release: project is Available" in r.stderr


def test_a_wrong_role_lists_the_roles(logged_in, dds):
    r = dds("user", "add", "bob@uni.se", "-r", "Wizard")
    assert r.exit_code == Exit.USAGE
    assert ("'Wizard' is not one of Researcher (researcher), Unit Personnel "
            "(unit_personnel), Unit Admin (unit_admin), Super Admin (super_admin).") in r.stderr
    assert logged_in.seen == []
    logged_in.on("POST", "invites", {"kind": "invited", "email": "eve@f.se",
                                     "expires_at": EXPIRES}, status=201)
    for given in ("Unit Personnel", "unit_personnel", "UNIT-PERSONNEL"):
        assert dds("user", "add", "eve@f.se", "-r", given).exit_code == 0
        assert logged_in.seen[-1].body["role"] == "unit_personnel"


def test_not_logged_in_says_it_once(api, dds):
    r = dds("--url", api.url, "project", "ls")
    assert r.exit_code == Exit.NOT_LOGGED_IN
    assert r.stderr.startswith("Not logged in: no login is kept in ")
    assert r.stderr.lower().count("logged in") == 1 and "dds auth login" in r.stderr


def test_access_fix_with_nothing_to_fix_says_so(logged_in, dds):
    logged_in.on("POST", "users/newbie/access-fix", {"projects": []})
    r = dds("project", "access", "fix", "-u", "newbie")
    assert r.exit_code == 0
    assert "No project needed an access fix for newbie" in r.stderr
    assert "in: no project" not in r.stderr
    logged_in.on("POST", "projects/demo-00001/access-fix", {"fixed": []})
    r = dds("project", "access", "fix", "-u", "newbie", "-p", "demo-00001")
    assert "newbie's access to demo-00001 needed no fix" in r.stderr
    logged_in.on("POST", "users/newbie/access-fix", {"projects": ["demo-00001", "demo-00002"]})
    r = dds("project", "access", "fix", "-u", "newbie")
    assert "Access fixed for newbie in demo-00001, demo-00002." in r.stderr
