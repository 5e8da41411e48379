"""What scripts and support rely on (issue 18, item 8), with the real `dds` against the live
server: `data get --source-path-file`, `--log-file` (and that it holds no secret),
`--token-path`, `ls --sort/--users`, and `auth twofactor configure` setting up an
authenticator app from the terminal, after which a login asks for the app's code."""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest
from django.core import mail
from django_otp.oath import TOTP

from accounts.models import TOTPDevice
from tests.e2e.conftest import DDS, wait_for_code
from tests.e2e.journey import tree

pytestmark = pytest.mark.django_db(transaction=True)


def _login(dds: DDS, *extra: str) -> str:
    """`dds auth login` with extra global options; returns the emailed code it used."""
    proc = dds.popen(*extra, "auth", "login", "-u", dds.user.username, stdin=subprocess.PIPE)
    before = len(mail.outbox)
    proc.stdin.write(dds.password + "\n")
    proc.stdin.flush()
    code = wait_for_code(dds.user.email, before)
    _, err = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 0, err
    return code


def _project(staff: DDS, title: str) -> str:
    r = staff("project", "create", "-t", title, "-pi", "Prof. P", "--force", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)["id"]


def _code(secret: str, steps_ahead: int = 0) -> str:
    totp = TOTP(base64.b32decode(secret), step=30, digits=6)
    totp.time = time.time() + steps_ahead * 30
    return f"{totp.token():06d}"


def test_get_from_a_path_file_with_a_log_and_a_token_path(e2e, tmp_path):
    staff, researcher = e2e.staff, e2e.researcher
    staff.login()
    first = _project(staff, "B second delivery")
    project = _project(staff, "A first delivery")
    source = tmp_path / "src" / "run42"
    (source / "lane1").mkdir(parents=True)
    (source / "lane2").mkdir()
    (source / "lane1" / "reads.txt").write_text("@r1\nACGT\n+\nIIII\n" * 5000)
    (source / "lane2" / "other.txt").write_text("not asked for\n")
    (source / "sample sheet.csv").write_text("a,b\n1,2\n")
    r = staff("data", "put", "-p", project, "-s", str(source), "--silent")
    assert r.code == 0 and "3 file(s) uploaded" in r.err, r.err
    r = staff("project", "access", "grant", "-p", project, "-e", researcher.user.email)
    assert r.code == 0, r.err
    r = staff("project", "status", "release", "-p", project, "--deadline", "10")
    assert r.code == 0, r.err

    # ls --sort and --users, as the staff see them.
    r = staff("ls", "--sort", "title", "--json")
    assert r.code == 0, r.err
    assert [p["id"] for p in json.loads(r.out)] == [project, first]
    r = staff("ls", "--sort", "title", "--reverse", "--users", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert [p["id"] for p in rows] == [first, project]
    assert [u["username"] for u in rows[1]["users"]] == [researcher.user.username]
    r = staff("ls", "--sort", "size", "--users")
    assert r.code == 0, r.err
    assert researcher.user.username in r.out and "Users" in r.out.splitlines()[0]

    # The researcher keeps the login elsewhere, and logs the whole run for support.
    token = tmp_path / "tokens" / "run42" / "token.json"
    log = tmp_path / "support.log"
    code = _login(researcher, "--token-path", str(token), "--log-file", str(log))
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert not (researcher.config / "token.json").exists()
    stored = json.loads(token.read_text())

    listing = tmp_path / "wanted.txt"
    listing.write_text(f"# the PI wants lane 1 and the sheet\n{source.name}/lane1\n\n"
                       f"{source.name}/sample sheet.csv\n")
    out = tmp_path / "out"
    r = researcher("data", "get", "-p", project, "--source-path-file", str(listing), "-d",
                   str(out), "--silent", "--token-path", str(token), "--log-file", str(log))
    assert r.code == 0, r.err
    assert tree(out) == {k: v for k, v in tree(source.parent).items()
                         if not k.startswith("run42/lane2/")}
    r = researcher("data", "get", "-p", project, "-spf", str(tmp_path / "missing.txt"),
                   "--token-path", str(token))
    assert r.code == 2 and "cannot read the source path file" in r.err

    text = log.read_text()
    assert "command line: dds --token-path" in text and "auth login" in text
    assert re.search(r"POST auth/login -> 200 OK in \d+ ms \(request id [\w-]+\)", text)
    assert re.search(rf"POST projects/{project}/files/download -> 200 OK", text)
    storage = [line for line in text.splitlines() if " storage GET " in line]
    assert storage and all(" -> 20" in line and "?" not in line for line in storage)
    assert "done: run42/lane1/reads.txt" in text
    for value in (researcher.password, code, stored["access"], stored["refresh"],
                  "X-Amz-Signature", "X-Amz-Credential"):
        assert value not in text

    r = researcher("auth", "logout", "--token-path", str(token), "--json")
    assert r.code == 0 and json.loads(r.out)["logged_out"] is True
    assert not token.exists()


def test_twofactor_configure_sets_up_the_app_and_logins_ask_for_it(e2e, tmp_path):
    researcher = e2e.researcher
    user = researcher.user
    researcher.login()
    log = tmp_path / "totp.log"
    sent = len(mail.outbox)
    proc = researcher.popen("auth", "twofactor", "configure", "--log-file", str(log),
                            stdin=subprocess.PIPE)
    shown: list[str] = []
    secret = None
    deadline = time.monotonic() + 60
    while secret is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        shown.append(line)
        found = re.match(r"Secret \(no spaces\): ([A-Z2-7]+)\s*$", line)
        secret = found.group(1) if found else None
    assert secret, "".join(shown)
    assert sum("█" in line or "▀" in line or "▄" in line for line in shown) > 10  # the QR
    code = _code(secret)
    _, rest = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 0, "".join(shown) + rest
    assert "Authenticator app enabled" in rest
    assert TOTPDevice.objects.get(user=user).confirmed
    assert base64.b32decode(secret) == TOTPDevice.objects.get(user=user).bin_key
    assert "Authenticator app enabled" in [m.subject for m in mail.outbox[sent:]
                                           if user.email in m.to]
    text = log.read_text()
    assert "POST me/totp/setup -> 201" in text and "POST me/totp/confirm -> 200" in text
    assert secret not in text and code not in text and "otpauth" not in text

    # A new login asks for the app's code (from the next time step: a code is used once).
    proc = researcher.popen("auth", "login", "-u", user.username, stdin=subprocess.PIPE)
    proc.stdin.write(researcher.password + "\n")
    proc.stdin.flush()
    asked = proc.stderr.readline()
    assert "authenticator app" in asked
    _, err = proc.communicate(_code(secret, 1) + "\n", timeout=60)
    assert proc.returncode == 0, asked + err
    r = researcher("auth", "info", "--json")
    assert r.code == 0 and json.loads(r.out)["second_factor"] == "totp"

    # And back: email codes again, confirmed by the link emailed to the user.
    r = researcher("auth", "twofactor", "configure", "--method", "email", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["email_sent"] is True
    assert any("/accounts/totp/disable/" in m.body for m in mail.outbox if user.email in m.to)


def test_a_wrong_first_code_is_refused_and_nothing_changes(e2e, tmp_path):
    researcher = e2e.researcher
    researcher.login()
    proc = researcher.popen("auth", "twofactor", "configure", "--json",
                            stdin=subprocess.PIPE)
    out, err = proc.communicate("12345\n", timeout=60)
    assert proc.returncode == 5, err
    assert json.loads(out)["error"]["message"]
    assert not TOTPDevice.objects.filter(user=researcher.user, confirmed=True).exists()
    r = researcher("auth", "info", "--json")
    assert json.loads(r.out)["second_factor"] == "email"


def test_no_token_file_where_the_token_path_is_not_writable(e2e, tmp_path):
    folder = tmp_path / "is-a-folder"
    folder.mkdir()
    researcher = e2e.researcher
    proc = researcher.popen("--token-path", str(folder), "auth", "login", "-u",
                            researcher.user.username, stdin=subprocess.PIPE)
    before = len(mail.outbox)
    proc.stdin.write(researcher.password + "\n")
    proc.stdin.flush()
    code = wait_for_code(researcher.user.email, before)
    _, err = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 1 and "cannot write the token file" in err
    assert list(Path(folder).iterdir()) == []
