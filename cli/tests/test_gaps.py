"""The options scripts and support depend on (issue 18, item 8), in-process against the fake
API: ``data get --source-path-file``, the debug log (``--log-file``, ``-v``) and what it
must never hold, ``--token-path``, ``ls --sort/--users``, and ``auth twofactor configure``."""

from __future__ import annotations

import json
import logging
import stat

import pytest
import qrcode

from cli.errors import Exit
from cli.output import (
    logging_start,
    logging_stop,
    masked_argv,
    qr_lines,
    redact,
    secret,
)
from cli.transfer import storage_client

PROJECTS = [
    {"id": "ngi-00002", "title": "wgs", "pi": "Dr. Q", "status": "available",
     "status_display": "Available", "deadline": "2026-12-11T18:54:00Z", "role": "Unit Admin",
     "files": 0, "size_bytes": 0, "created_at": "2026-11-02T10:00:00Z", "unit": "NGI"},
    {"id": "ngi-00001", "title": "RNA-seq", "pi": "Prof. P", "status": "in_progress",
     "status_display": "In Progress", "deadline": None, "role": "Unit Admin", "files": 3,
     "size_bytes": 12_500_000, "created_at": "2026-11-01T10:00:00Z", "unit": "NGI"},
    {"id": "ngi-00003", "title": "Methyl", "pi": "Dr. A", "status": "available",
     "status_display": "Available", "deadline": "2026-12-01T18:54:00Z", "role": "Unit Admin",
     "files": 1, "size_bytes": 900, "created_at": "2026-11-03T10:00:00Z", "unit": "NGI"},
]
#: What the real server's tokens look like (JWTs), so that the patterns are tried too.
PENDING = "eyJhbGciOiJIUzI1NiJ9.eyJwZW5kaW5nIjp0cnVlfQ.c2lnbmF0dXJlLXBlbmRpbmc"
ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJlLWFjY2Vzcw"
REFRESH = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJlLXJlZnJlc2g"
PASSWORD = "Correct-Horse-42"
CODE = "81726354"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOTP_URI = (f"otpauth://totp/DDS:alice?secret={TOTP_SECRET}&algorithm=SHA1&digits=6"
            "&period=30&issuer=DDS")


@pytest.fixture(autouse=True)
def _no_token_path_env(monkeypatch):
    monkeypatch.delenv("DDS_TOKEN_PATH", raising=False)
    yield
    logging_stop()


def _serve_login(api) -> None:
    # An authenticator app: --code takes its code (an emailed one is typed when asked).
    api.on("POST", "auth/login", {"pending_token": PENDING, "second_factor": "totp",
                                  "detail": "Enter the code from your authenticator app."})
    api.on("POST", "auth/2fa", {"access": ACCESS, "refresh": REFRESH, "token_type": "Bearer",
                                "access_expires_at": None, "refresh_expires_at": None})


# ------------------------------------------------------------- data get --source-path-file


def test_get_takes_paths_from_a_file_with_the_sources(logged_in, dds, tmp_path):
    logged_in.on("POST", "projects/ngi-00001/files/download", {"files": [], "missing": []})
    listing = tmp_path / "paths.txt"
    listing.write_text("# what the PI asked for\nrun42/lane1\n\n  samplesheet.csv  \n"
                       "#run42/old\nnotes/ä b.txt\n")
    r = dds("data", "get", "-p", "ngi-00001", "-s", "extra.txt", "--source-path-file",
            str(listing), "-d", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.output
    asked = [s.body for s in logged_in.seen if s.path.endswith("/files/download")]
    assert asked[0]["paths"] == ["extra.txt", "run42/lane1", "samplesheet.csv",
                                 "notes/ä b.txt"]


def test_get_source_path_file_errors_are_usage_errors(logged_in, dds, tmp_path):
    r = dds("data", "get", "-p", "ngi-00001", "-spf", str(tmp_path / "nope.txt"))
    assert r.exit_code == Exit.USAGE
    assert "cannot read the source path file" in r.stderr and "nope.txt" in r.stderr
    only_comments = tmp_path / "empty.txt"
    only_comments.write_text("# nothing yet\n\n")
    r = dds("data", "get", "-p", "ngi-00001", "-spf", str(only_comments), "--json")
    assert r.exit_code == Exit.USAGE
    assert "lists no path" in json.loads(r.stdout)["error"]["message"]
    r = dds("data", "get", "-p", "ngi-00001", "-spf", str(only_comments), "--get-all",
            "-s", "x")
    assert r.exit_code == Exit.USAGE
    assert logged_in.seen == []


def test_put_source_path_file_skips_comments_too(logged_in, dds, tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_text("# a comment\n\n")
    r = dds("data", "put", "-p", "ngi-00001", "-spf", str(listing))
    assert r.exit_code == Exit.USAGE and "Nothing to upload" in r.stderr
    r = dds("data", "put", "-p", "ngi-00001", "-spf", str(tmp_path / "nope.txt"))
    assert r.exit_code == Exit.USAGE and "cannot read the source path file" in r.stderr


# ------------------------------------------------------------------------- the debug log


def test_log_file_records_the_run(logged_in, dds, tmp_path):
    logged_in.on("GET", "projects", PROJECTS)
    logged_in.headers["X-Request-ID"] = "req-4242"
    log = tmp_path / "logs" / "dds.log"
    log.parent.mkdir()
    r = dds("project", "ls", "--log-file", str(log))  # after the subcommand, as --json
    assert r.exit_code == 0
    text = log.read_text()
    assert "dds " in text.splitlines()[0] and "Python" in text.splitlines()[0]
    assert "command line: dds project ls --log-file" in text
    assert "GET projects -> 200 OK in" in text and "(request id req-4242)" in text
    assert "exit status 0 (OK)" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "debug:" not in r.stderr  # the log went to the file only

    logged_in.on("GET", "projects", {"detail": "No.", "code": "permission_denied"},
                 status=403)
    r = dds("--log-file", str(log), "project", "ls")
    assert r.exit_code == Exit.REFUSED
    again = log.read_text()
    assert again.startswith(text)  # appended
    added = again[len(text):]
    assert "GET projects -> 403" in added and "the server said: No. (code permission_denied)" \
        in added
    assert "failed: Refused: No. (status 403, code permission_denied)" in added
    assert "Traceback (most recent call last)" in added
    assert "exit status 5 (REFUSED)" in added


def test_verbose_prints_the_debug_lines_on_stderr(logged_in, dds):
    logged_in.on("GET", "projects", PROJECTS)
    r = dds("-v", "project", "ls", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == PROJECTS  # stdout stays the data
    assert "debug: cli.client: GET projects -> 200 OK" in r.stderr
    r = dds("project", "ls", "--json")
    assert "debug:" not in r.stderr  # not carried over to the next run


def test_the_log_starts_once_whatever_the_options_order(logged_in, dds, tmp_path):
    logged_in.on("GET", "projects", PROJECTS)
    log = tmp_path / "dds.log"
    r = dds("-v", "project", "--log-file", str(log), "ls", "-v")
    assert r.exit_code == 0
    text = log.read_text()
    assert text.count("command line: ") == 1 and text.count("GET projects -> 200") == 1
    assert r.stderr.count("debug: cli.output: command line: ") == 1
    # A usage error (before any command ran) is logged too.
    r = dds("--log-file", str(log), "project", "ls", "--no-such-option")
    assert r.exit_code == Exit.USAGE
    added = log.read_text()[len(text):]
    assert "failed: NoSuchOption" in added and "exit status 2 (USAGE)" in added


def test_a_log_file_that_cannot_be_written_is_reported(logged_in, dds, tmp_path):
    r = dds("--log-file", str(tmp_path / "no" / "such" / "dir" / "x.log"), "project", "ls")
    assert r.exit_code == Exit.ERROR and "cannot write the log file" in r.stderr


def test_a_login_logs_no_secret(api, dds, tmp_path, monkeypatch):
    _serve_login(api)
    log = tmp_path / "login.log"
    monkeypatch.setenv("DDS_PASSWORD", PASSWORD)
    r = dds("--url", api.url, "auth", "login", "-u", "alice", "--code", CODE, "-v",
            "--log-file", str(log))
    assert r.exit_code == 0, r.output
    # The password went out (the fake saw it), but no log line holds it.
    assert api.seen[0].body == {"username": "alice", "password": PASSWORD}
    assert api.seen[1].headers["Authorization"] == f"Bearer {PENDING}"
    text = log.read_text()
    assert "POST auth/login -> 200" in text and "POST auth/2fa -> 200" in text
    assert "--code ***" in text
    for value in (PASSWORD, CODE, PENDING, ACCESS, REFRESH):
        assert value not in text and value not in r.stderr

    # A failure whose message and traceback would carry secrets: masked there too.
    api.on("POST", "auth/2fa", {"detail": f"The code {CODE} is wrong for {PENDING}.",
                                "code": "invalid_code"}, status=400)
    r = dds("--url", api.url, "auth", "login", "-u", "alice", f"--code={CODE}",
            "--log-file", str(log))
    assert r.exit_code == Exit.REFUSED
    text = log.read_text()
    assert "--code=***" in text and "Traceback" in text
    for value in (PASSWORD, CODE, PENDING, ACCESS, REFRESH):
        assert value not in text


def test_storage_requests_are_logged_without_their_signature(api, tmp_path):
    log = tmp_path / "storage.log"
    logging_start(log_file=str(log), verbose=False, argv=["data", "get"])
    try:
        with storage_client(1) as http:
            http.get(f"{api.url}/bucket/object.c4gh?X-Amz-Credential=AKIA1234&"
                     "X-Amz-Signature=deadbeef0123")
    finally:
        logging_stop()
    text = log.read_text()
    assert f"storage GET {api.url}/bucket/object.c4gh -> 404 in" in text
    assert "deadbeef0123" not in text and "AKIA1234" not in text


def test_redaction_of_what_looks_like_a_secret():
    secret("Known-Secret-Value")
    cases = {
        "Authorization: Bearer abc.def.ghi": "abc.def.ghi",
        "{'authorization': 'Basic dXNlcjpwdw=='}": "dXNlcjpwdw==",
        f"token {ACCESS} refused": ACCESS,
        "PUT https://s3.example.org/b/k?partNumber=1&X-Amz-Signature=f00d -> 403": "f00d",
        '{"password": "hunter2", "username": "alice"}': "hunter2",
        '{"new_password": "Pw-1", "current_password": "Pw-0"}': "Pw-",
        "{'code': '12345678'}": "12345678",
        "otpauth://totp/DDS:alice?secret=ABCDEFGH&issuer=DDS": "ABCDEFGH",
        "secret=ABCDEFGH&x=1": "ABCDEFGH",
        "-----BEGIN CRYPT4GH PRIVATE KEY-----\nc2VjcmV0\n-----END CRYPT4GH PRIVATE KEY-----":
            "c2VjcmV0",
        "the passphrase is Known-Secret-Value.": "Known-Secret-Value",
        "HTTP 403: <Error><SignatureProvided>a1b2c3</SignatureProvided></Error>": "a1b2c3",
        # the local store's signed URLs: the token is the path's last segment
        "storage PUT http://h:8000/storage/puts/.eJyrVkpU:1vQk3p:Xh7Q -> 200": ".eJyrVkpU",
        "storage PUT http://h/storage/parts/eJxTOKEN:1vQ:ab -> 200 in 3 ms": "eJxTOKEN",
        "storage GET http://h/storage/objects/OBJTOKEN -> 206": "OBJTOKEN",
    }
    for text, hidden in cases.items():
        assert hidden not in redact(text), text
    assert redact("GET projects/ngi-00001/files -> 200") == "GET projects/ngi-00001/files -> 200"
    assert masked_argv(["auth", "login", "--code", "1", "--password=x", "--token-path", "t"]) \
        == ["auth", "login", "--code", "***", "--password=***", "--token-path", "t"]


def test_the_filter_masks_arguments_and_tracebacks(tmp_path):
    log = tmp_path / "x.log"
    logging_start(log_file=str(log), verbose=False, argv=[])
    try:
        secret("Pass-Phrase-99")
        try:
            raise ValueError("unlock failed with Pass-Phrase-99")
        except ValueError:
            logging.getLogger("cli.test").debug("args %s", "Pass-Phrase-99", exc_info=True)
    finally:
        logging_stop()
    text = log.read_text()
    assert "ValueError: unlock failed with ***" in text and "args ***" in text
    assert "Pass-Phrase-99" not in text


# ------------------------------------------------------------------------- --token-path


def test_token_path_is_where_the_login_is_kept(api, dds, dirs, tmp_path, monkeypatch):
    _serve_login(api)
    api.on("GET", "projects", PROJECTS)
    api.on("POST", "auth/logout", None, status=204)
    monkeypatch.setenv("DDS_PASSWORD", PASSWORD)
    token = tmp_path / "tokens" / "project-a" / "token.json"
    r = dds("--url", api.url, "auth", "login", "-u", "alice", "--code", CODE,
            "--token-path", str(token), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["token_file"] == str(token)
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert json.loads(token.read_text())["access"] == ACCESS
    assert not (dirs / "token.json").exists()  # the default stays untouched

    # Without the option there is no login; with it (or DDS_TOKEN_PATH), there is.
    assert dds("project", "ls", "--url", api.url).exit_code == Exit.NOT_LOGGED_IN
    r = dds("project", "ls", "--token-path", str(token), "--json")
    assert r.exit_code == 0 and api.seen[-1].headers["Authorization"] == f"Bearer {ACCESS}"
    monkeypatch.setenv("DDS_TOKEN_PATH", str(token))
    assert dds("project", "ls").exit_code == 0
    r = dds("auth", "logout", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["logged_out"] is True
    assert not token.exists()


def test_an_unwritable_token_path_is_a_clear_error(api, dds, tmp_path, monkeypatch):
    _serve_login(api)
    monkeypatch.setenv("DDS_PASSWORD", PASSWORD)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    r = dds("--url", api.url, "auth", "login", "-u", "alice", "--code", CODE,
            "--token-path", str(folder))
    assert r.exit_code == Exit.ERROR and "cannot write the token file" in r.stderr


# ------------------------------------------------------------------------ ls --sort/--users


def _ids(r) -> list[str]:
    assert r.exit_code == 0, r.output
    return [p["id"] for p in json.loads(r.stdout)]


@pytest.mark.parametrize(("args", "order"), [
    (("--sort", "id"), ["ngi-00001", "ngi-00002", "ngi-00003"]),
    (("--sort", "id", "--reverse"), ["ngi-00003", "ngi-00002", "ngi-00001"]),
    (("--sort", "title"), ["Methyl", "RNA-seq", "wgs"]),  # case-insensitive
    (("--sort", "size"), ["ngi-00002", "ngi-00003", "ngi-00001"]),
    (("--sort", "size", "--reverse"), ["ngi-00001", "ngi-00003", "ngi-00002"]),
    (("--sort", "created"), ["ngi-00001", "ngi-00002", "ngi-00003"]),
    # Projects without a deadline come last either way.
    (("--sort", "deadline"), ["ngi-00003", "ngi-00002", "ngi-00001"]),
    (("--sort", "deadline", "--reverse"), ["ngi-00002", "ngi-00003", "ngi-00001"]),
    (("--sort", "pi"), ["ngi-00003", "ngi-00002", "ngi-00001"]),
])
def test_ls_sort(logged_in, dds, args, order):
    logged_in.on("GET", "projects", PROJECTS)
    r = dds("ls", *args, "--json")
    shown = _ids(r) if order[0].startswith("ngi-") else [
        p["title"] for p in json.loads(r.stdout)]
    assert shown == order


def test_ls_sort_in_the_table_and_bad_keys(logged_in, dds):
    logged_in.on("GET", "projects", PROJECTS)
    r = dds("ls", "--sort", "size", "--reverse")
    assert r.exit_code == 0
    rows = r.stdout.splitlines()[1:]
    assert [line.split()[0] for line in rows] == ["ngi-00001", "ngi-00003", "ngi-00002"]
    r = dds("ls", "--sort", "colour")
    assert r.exit_code == Exit.USAGE and "colour" in r.stderr
    r = dds("ls", "-p", "ngi-00001", "--sort", "id")
    assert r.exit_code == Exit.USAGE and "without -p" in r.stderr


def test_ls_users_adds_the_members(logged_in, dds):
    logged_in.on("GET", "projects", PROJECTS)
    members = {"members": [
        {"username": "bob", "name": "Bob", "email": "bob@uni.se", "owner": True,
         "has_key": True},
        {"username": "eve", "name": "Eve", "email": "eve@uni.se", "owner": False,
         "has_key": True}], "invites": []}
    logged_in.on("GET", "projects/ngi-00001/members", members)
    logged_in.on("GET", "projects/ngi-00002/members", {"members": [], "invites": []})
    logged_in.on("GET", "projects/ngi-00003/members",
                 {"detail": "No.", "code": "permission_denied"}, status=403)
    r = dds("ls", "--users", "--sort", "id", "--json")
    assert r.exit_code == 0, r.output
    got = {p["id"]: p["users"] for p in json.loads(r.stdout)}
    assert got == {"ngi-00001": members["members"], "ngi-00002": [], "ngi-00003": None}
    r = dds("ls", "--users", "--sort", "id")
    lines = r.stdout.splitlines()
    assert lines[0].rstrip().endswith("Users")
    at = lines[0].index("Users")
    assert [line[at:].strip() for line in lines[1:]] == ["bob (owner), eve", "none", "–"]
    assert lines[0].split("  ")[0] == "Project" and "PI" in lines[0]


# --------------------------------------------------------------- auth twofactor configure


def _asked(api, since: int = 0) -> list[str]:
    """The requests sent, without the messages of the day (cli.announce asks once)."""
    return [p for p in api.paths()[since:] if not p.startswith("GET motd")]


def _serve_totp(api, second_factor: str = "email") -> None:
    api.on("GET", "me", {"username": "alice", "second_factor": second_factor})
    api.on("POST", "me/totp/setup", {"uri": TOTP_URI, "secret": TOTP_SECRET, "digits": 6,
                                     "period": 30, "detail": "Scan it."}, status=201)
    api.on("POST", "me/totp/confirm", {"second_factor": "totp", "detail": "Enabled."})


def test_configure_app_shows_the_qr_code_and_confirms_the_first_code(logged_in, dds,
                                                                      tmp_path):
    _serve_totp(logged_in)
    log = tmp_path / "totp.log"
    r = dds("auth", "twofactor", "configure", "--log-file", str(log), "-v",
            input="123 456\n")
    assert r.exit_code == 0, r.output
    assert _asked(logged_in) == ["GET me", "POST me/totp/setup", "POST me/totp/confirm"]
    assert logged_in.seen[-1].body == {"code": "123456"}
    # The QR code (its half-block lines) and the secret for typing in by hand.
    for line in qr_lines(TOTP_URI):
        assert line in r.stderr
    assert "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP" in r.stderr
    assert "Authenticator app enabled" in r.stderr and r.stdout == ""
    # The log holds the requests, never the secret, the URI or the code.
    text = log.read_text()
    assert "POST me/totp/setup -> 201" in text and "POST me/totp/confirm -> 200" in text
    for value in (TOTP_SECRET, "123456", "123 456", "otpauth://totp/DDS:alice?secret"):
        assert value not in text
    debug = "\n".join(line for line in r.stderr.splitlines() if line.startswith("debug:"))
    assert TOTP_SECRET not in debug and "123456" not in debug


def test_configure_app_with_json_and_a_wrong_code(logged_in, dds):
    _serve_totp(logged_in, second_factor="totp")
    # Replacing an app asks for the password first (the server needs it), then the code.
    r = dds("auth", "twofactor", "configure", "--method", "app", "--json",
            input="Pw-Alice-123\n654321\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"second_factor": "totp", "changed": True}
    assert "replaces it" in r.stderr  # an app was set up before
    [setup] = [x for x in logged_in.seen if x.path == "me/totp/setup"]
    assert setup.body == {"password": "Pw-Alice-123"}

    logged_in.on("POST", "me/totp/confirm", {
        "detail": "The code is wrong; check the app's clock and try again.",
        "code": "invalid"}, status=400)
    r = dds("auth", "twofactor", "configure", "--json", input="Pw-Alice-123\n000000\n")
    assert r.exit_code == Exit.REFUSED
    assert "The code is wrong" in json.loads(r.stdout)["error"]["message"]
    r = dds("auth", "twofactor", "configure", input="")
    assert r.exit_code == Exit.USAGE and "nothing on standard input" in r.stderr


def test_configure_email_asks_for_the_emailed_link(logged_in, dds):
    logged_in.on("GET", "me", {"username": "alice", "second_factor": "totp"})
    logged_in.on("DELETE", "me/totp", {"detail": "Check your email: the link in it turns "
                                                 "the authenticator app off."}, status=202)
    r = dds("auth", "twofactor", "configure", "--method", "email")
    assert r.exit_code == 0 and "Check your email" in r.stderr
    assert logged_in.paths()[-1] == "DELETE me/totp"
    r = dds("auth", "twofactor", "configure", "--method", "email", "--json")
    assert json.loads(r.stdout)["email_sent"] is True

    logged_in.on("GET", "me", {"username": "alice", "second_factor": "email"})
    before = len(logged_in.seen)
    r = dds("auth", "twofactor", "configure", "--method", "email", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == {"second_factor": "email", "changed": False}
    assert _asked(logged_in, before) == ["GET me"]


def test_the_qr_code_holds_exactly_the_modules_of_the_uri():
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(TOTP_URI)
    code.make(fit=True)
    matrix = code.get_matrix()
    lines = qr_lines(TOTP_URI)
    assert len(lines) == (len(matrix) + 1) // 2
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    drawn = []
    for line in lines:
        drawn += [[top[c] for c in line], [bottom[c] for c in line]]
    assert drawn[:len(matrix)] == matrix
    assert all(not dark for row in drawn[len(matrix):] for dark in row)  # padding row
