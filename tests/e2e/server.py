"""A DDS server in a process of its own, set up as `make run` does (DEBUG=1, migrate,
`demo_data`, the embedded default: SQLite, local storage, eager tasks, mail in files) —
for tests whose server must not share pytest's PostgreSQL database, or must be a real
WSGI server (runserver or gunicorn) rather than the live-server thread.

Login codes are read from the mail files, credentials from var/demo-credentials.json,
and the server's log is kept to count the errors it answered with.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]
#: The cheap key costs of ddsite/settings_test.py, for a server that is not pytest's.
CHEAP_KEYS = {"DDS_KDF_TIME_COST": "1", "DDS_KDF_MEMORY_KIB": "256",
              "DDS_KDF_PARALLELISM": "1", "DDS_USER_RSA_BITS": "2048"}


class ServerProcess:
    def __init__(self, var: Path, *, kind: str = "runserver", env: dict | None = None):
        self.var, self.kind = var, kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var / "server.log"
        self.db_path = var / "dds.sqlite3"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("DDS_", "DATABASE_", "AWS_", "DJANGO_"))}
        self.env = {**base, **CHEAP_KEYS, "DEBUG": "1", "DDS_VAR_DIR": str(var),
                    "DATABASE_URL": f"sqlite:///{self.db_path}",
                    "DJANGO_SETTINGS_MODULE": "ddsite.settings", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"manage.py {' '.join(args)}: {r.stderr[-3000:]}"
        return r.stdout

    def start(self) -> ServerProcess:
        self.var.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--no-input")
        self.manage("demo_data")
        if self.kind == "gunicorn":
            cmd = [sys.executable, "-m", "gunicorn", "ddsite.wsgi:application",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4",
                   "--timeout", "120", "--access-logfile", "-"]
        else:  # what `make run` serves with
            cmd = [sys.executable, "manage.py", "runserver", "--noreload",
                   f"127.0.0.1:{self.port}"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} did not start: {self.log()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None):
            self._log.close()

    # ---------------------------------------------------------------- what it did

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_errors(self, since: int = 0) -> list[str]:
        """Log lines after offset ``since`` that show a 5xx answer or a database lock."""
        text = self.log()[since:]
        return [line for line in text.splitlines()
                if re.search(r'" 5\d\d ', line) or "database is locked" in line
                or line.startswith("Traceback")]

    def credentials(self) -> dict[str, str]:
        return json.loads((self.var / "demo-credentials.json").read_text())

    def mail_count(self) -> int:
        return len(self._mails())

    def _mails(self) -> list[Path]:
        folder = self.var / "mail"
        return sorted(folder.glob("*"), key=lambda p: p.stat().st_mtime_ns) \
            if folder.is_dir() else []

    def code_for(self, email: str, seen: int, timeout: float = 30) -> str:
        """The login code in the first mail to ``email`` after the first ``seen`` files."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in self._mails()[seen:]:
                text = path.read_text(errors="replace")
                if email in text:
                    found = re.search(r"\b(\d{8})\b", text.split("\n\n", 1)[-1])
                    if found:
                        return found.group(1)
            time.sleep(0.1)
        raise AssertionError(f"no login code was mailed to {email}")

    def sql(self, query: str, *args) -> list[tuple]:
        """Read the server's SQLite database (what the catalogue holds)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=20) as db:
            return db.execute(query, args).fetchall()

    def stored_objects(self) -> dict[str, list[str]]:
        """Per bucket under var/storage: object files and unfinished multipart uploads."""
        root = self.var / "storage"
        out: dict[str, list[str]] = {}
        for bucket in (p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
            objects = [p.name for p in bucket.iterdir() if p.is_file()]
            multipart = [p.name for p in (bucket / ".multipart").iterdir()] \
                if (bucket / ".multipart").is_dir() else []
            out[bucket.name] = sorted(objects) + [f".multipart/{m}" for m in multipart]
        return out
