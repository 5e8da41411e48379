"""The CLI's contract for scripts (docs/cli.md): exit statuses, --json everywhere (errors
too), global options after the subcommand, confirmations, plain columns when piped, the
state directory and shell completion — in-process against a fake API (cli/tests/fake_api)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli import config
from cli.errors import Exit
from cli.journal import Journal
from cli.tests.fake_api import Seen
from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]

PROJECTS = [
    {"id": "ngi-00001", "title": "RNA-seq batch 3 with a title longer than a narrow terminal",
     "pi": "Prof. P", "status_display": "In Progress", "deadline": None,
     "role": "Unit Admin", "files": 3, "size_bytes": 12_500_000},
    {"id": "ngi-00002", "title": "WGS", "pi": "Dr. Q", "status_display": "Available",
     "deadline": "2026-12-11T18:54:00Z", "role": "Unit Admin", "files": 0, "size_bytes": 0},
]


# --------------------------------------------------------------------- exit statuses


def test_the_statuses_have_the_documented_values():
    assert {e.name: e.value for e in Exit} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "NOT_LOGGED_IN": 3, "UNREACHABLE": 4,
        "REFUSED": 5, "PARTIAL": 6, "INTERRUPTED": 130}
    doc = (REPO / "docs" / "cli.md").read_text()
    for e in Exit:
        assert f"| {e.value} |" in doc, f"docs/cli.md does not list exit status {e.value}"


def test_ok(logged_in, dds):
    logged_in.on("GET", "projects", PROJECTS)
    r = dds("project", "ls", "--json")
    assert r.exit_code == Exit.OK
    assert json.loads(r.stdout) == PROJECTS
    assert logged_in.seen[0].headers["Authorization"] == "Bearer access-token"


def test_not_logged_in(api, dds):
    r = dds("--url", api.url, "project", "ls")
    assert r.exit_code == Exit.NOT_LOGGED_IN
    assert "dds auth login" in r.stderr and r.stdout == ""
    assert api.seen == []  # nothing was asked of the server


def test_unreachable(dirs, dds):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config.save_token({"url": url, "username": "alice", "access": "a", "refresh": "r"})
    r = dds("project", "ls", "--json")
    assert r.exit_code == Exit.UNREACHABLE
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "unreachable" and f"Cannot reach {url}" in error["message"]


def test_refused_by_the_server_keeps_its_code_and_message(logged_in, dds):
    logged_in.on("GET", "projects", {"detail": "Researchers cannot list units.",
                                     "code": "permission_denied"}, status=403)
    r = dds("project", "ls", "--json")
    assert r.exit_code == Exit.REFUSED
    assert json.loads(r.stdout) == {"error": {"code": "permission_denied",
                                              "message": "Researchers cannot list units."}}
    r = dds("project", "ls")
    assert r.exit_code == Exit.REFUSED
    assert r.stdout == "" and "Error: Researchers cannot list units." in r.stderr


def test_usage_errors_are_clicks_status_and_json_with_json(logged_in, dds):
    r = dds("data", "rm", "-p", "ngi-00001", "--no-such-option", "--json")
    assert r.exit_code == Exit.USAGE == 2
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "usage" and "--no-such-option" in error["message"]
    r = dds("data", "rm", "-p", "ngi-00001")  # ours: neither paths, --folder nor --all
    assert r.exit_code == Exit.USAGE
    assert "Give file paths, --folder or --all" in r.stderr
    assert logged_in.seen == []


def test_partial_failure(logged_in, dds):
    logged_in.on("POST", "projects/ngi-00001/files/remove",
                 {"removed": ["a.txt"], "not_found": ["b.txt"]})
    r = dds("data", "rm", "-p", "ngi-00001", "a.txt", "b.txt")
    assert r.exit_code == Exit.PARTIAL
    assert "removed a.txt" in r.stderr and "not found b.txt" in r.stderr
    r = dds("data", "rm", "-p", "ngi-00001", "a.txt", "b.txt", "--json")
    assert r.exit_code == Exit.PARTIAL
    assert json.loads(r.stdout) == {"removed": ["a.txt"], "not_found": ["b.txt"]}


def test_interrupted(logged_in, tmp_path):
    """Ctrl-C while the server has not answered: 130 and one line, no traceback."""
    asked = threading.Event()
    release = threading.Event()

    def hold(_: Seen) -> None:
        asked.set()
        release.wait(30)

    logged_in.before_answer = hold
    logged_in.on("GET", "projects", [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "DDS_CONFIG_DIR": os.environ["DDS_CONFIG_DIR"]}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "project", "ls", "--json"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert asked.wait(30), "dds never asked the server"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        release.set()
        proc.kill()
    assert proc.returncode == Exit.INTERRUPTED == 130, err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert "Traceback" not in err


# ------------------------------------------------------------------- options, output


def test_global_options_before_or_after_the_subcommand(api, dds):
    api.on("GET", "projects", PROJECTS)
    config.save_token({"url": api.url, "username": "alice", "access": "a", "refresh": "r"})
    before = dds("--json", "--url", api.url, "project", "ls")
    middle = dds("project", "--json", "ls", "--url", api.url)
    after = dds("project", "ls", "--url", api.url, "--json")
    assert before.exit_code == middle.exit_code == after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(middle.stdout) == json.loads(after.stdout)
    # --url after the command reaches the server it names (not only the token's).
    r = dds("project", "ls", "--url", "http://127.0.0.1:9")
    assert r.exit_code == Exit.NOT_LOGGED_IN and "not http://127.0.0.1:9" in r.stderr


def test_piped_tables_are_plain_columns(logged_in, dds):
    logged_in.on("GET", "projects", PROJECTS)
    r = dds("project", "ls")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert not set(r.stdout) & set("┃━│─┏┓┗┛╇╈┡┩")
    assert lines[0].split("  ")[0] == "Project" and "Your role" in lines[0]
    assert len(lines) == 3  # a header and one line per project: nothing wrapped or folded
    assert lines[1].startswith("ngi-00001  RNA-seq batch 3 with a title longer than a narrow")
    # Columns line up: every value starts where its header does.
    at = lines[0].index("PI")
    assert lines[1][at:].startswith("Prof. P") and lines[2][at:].startswith("Dr. Q")


def test_mutating_commands_print_their_result_with_json(logged_in, dds):
    answer = {"id": "ngi-00002", "status": "available", "status_display": "Available",
              "deadline": "2026-12-11T18:54:00Z"}
    logged_in.on("POST", "projects/ngi-00002/release", answer)
    logged_in.on("POST", "users/bob/deactivate", None, status=204)
    r = dds("project", "status", "release", "-p", "ngi-00002", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == answer
    assert logged_in.seen[-1].body == {"notify": True}
    r = dds("user", "deactivate", "bob", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"username": "bob", "active": False}
    r = dds("user", "deactivate", "bob")
    assert r.exit_code == 0 and r.stdout == "" and "bob is deactivated" in r.stderr


@pytest.mark.parametrize("args", [
    ("data", "rm", "-p", "ngi-00001", "--all"),
    ("data", "rm", "-p", "ngi-00001", "--folder", "run42"),
    ("project", "status", "delete", "-p", "ngi-00001"),
    ("project", "delete", "-p", "ngi-00001"),
    ("project", "status", "archive", "-p", "ngi-00001"),
    ("project", "archive", "-p", "ngi-00001"),
    ("user", "delete", "bob"),
])
def test_destructive_commands_refuse_without_yes_when_they_cannot_ask(logged_in, dds, args):
    r = dds(*args)
    assert r.exit_code == Exit.USAGE
    assert "--yes" in r.stderr and "standard input is not a terminal" in r.stderr
    assert logged_in.seen == []  # nothing was sent


def test_yes_goes_ahead_and_reports(logged_in, dds):
    logged_in.on("POST", "projects/ngi-00001/files/remove-folder", {"files": 7, "queued": True})
    r = dds("data", "rm", "-p", "ngi-00001", "--all", "--yes", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == {"files": 7, "queued": True}
    assert logged_in.seen[-1].body == {"folder": ""}


# ------------------------------------------------------------------------ state dir


def test_journals_live_in_the_state_dir_0700(dirs, monkeypatch, tmp_path):
    monkeypatch.setenv("DDS_STATE_DIR", str(tmp_path / "state"))
    journal = Journal("https://dds.example.org", "ngi-00001")
    journal.save("run/a.bin", {"upload_id": "u1", "session_key": "00" * 32})
    assert journal.dir.parent == tmp_path / "state" / "journal"
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert journal.load("run/a.bin")["upload_id"] == "u1"
    assert not (dirs / "journal").exists()


def test_the_platform_state_dir_by_default(monkeypatch, tmp_path):
    for name in ("DDS_CONFIG_DIR", "DDS_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert config.config_dir() == tmp_path / "xdg-config" / "dds"
    assert config.state_dir() == tmp_path / "xdg-state" / "dds"
    assert config.journal_dir() == tmp_path / "xdg-state" / "dds" / "journal"


def test_journals_of_the_old_location_are_moved_once(dirs, monkeypatch, tmp_path):
    monkeypatch.setenv("DDS_STATE_DIR", str(tmp_path / "state"))
    journal = Journal("https://dds.example.org", "ngi-00001")
    journal.save("run/a.bin", {"upload_id": "u-old", "session_key": "11" * 32})
    # Where an older dds kept it: <config dir>/journal/<scope>/<entry>.json
    shutil.move(journal.dir.parent, dirs / "journal")
    assert (dirs / "journal" / journal.dir.name).is_dir()

    moved = Journal("https://dds.example.org", "ngi-00001")
    assert moved.load("run/a.bin")["upload_id"] == "u-old"
    assert not (dirs / "journal").exists()  # nothing left behind
    entry = next(moved.dir.iterdir())
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


# ---------------------------------------------------------------------- completion


def test_shell_completion(dds, monkeypatch):
    monkeypatch.setenv("_DDS_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "dds pro")
    monkeypatch.setenv("COMP_CWORD", "1")
    r = dds()
    assert r.exit_code == 0 and "plain,project" in r.stdout.splitlines()
    monkeypatch.setenv("COMP_WORDS", "dds data rm --y")
    monkeypatch.setenv("COMP_CWORD", "3")
    r = dds()
    assert "plain,--yes" in r.stdout.splitlines()
    monkeypatch.setenv("_DDS_COMPLETE", "bash_source")
    r = dds()
    assert "_dds_completion" in r.stdout  # the script docs/cli.md tells to source
