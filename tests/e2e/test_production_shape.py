"""The deployed shape, run here: what Kubernetes would run, wired as the manifests wire it.

- nginx in front as the ingress: it replaces X-Forwarded-For with the client it saw and
  says the request came over HTTPS; it reaches the pods from its own address, the only
  trusted proxy;
- two gunicorn "pods" from ``docker/entrypoint.sh web`` with DEBUG off and the
  ConfigMap's environment (k8s/base/config.env), secrets as the Secret would give them;
- a fresh PostgreSQL database, migrated by the migration Job's command run three times at
  once; a Celery worker on Redis (it sends the mail, to a real SMTP server on loopback);
  moto's S3 server in eu-north-1;
- the kubelet's probes (Host: the pod IP); a CronJob's command through the entrypoint;
- then a whole delivery through nginx with the real ``dds`` command, the lockout and the
  audit log seeing the real client addresses, the metrics each pod exports, and JSON logs
  without a secret from every process.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from email import message_from_bytes
from pathlib import Path
from types import SimpleNamespace

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from moto.server import ThreadedMotoServer

from tests.e2e.conftest import DDS
from tests.e2e.journey import tree
from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = str(REPO / "docker" / "entrypoint.sh")
#: nginx talks to the pods from this address (proxy_bind): the only trusted proxy.
INGRESS_ADDRESS = "127.0.0.9"
HOST = "dds.test"
BROKER_DB, CACHE_DB = 0, 1


class Mailbox:
    """aiosmtpd handler: every message the worker sends, kept in memory."""

    def __init__(self):
        self.messages: list[tuple[list[str], str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        body = message.get_payload(decode=True)
        body = body.decode() if isinstance(body, bytes) else str(message.get_payload())
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), body))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    mail_count = count  # what tests.e2e.conftest.DDS.login asks a server for

    def code_for(self, email: str, seen: int, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for to, body in self.messages[seen:]:
                    found = re.search(r"\b(\d{8})\b", body)
                    if email in to and found:
                        return found.group(1)
            time.sleep(0.1)
        raise AssertionError(f"the worker mailed no login code to {email}")


def _config_env() -> dict[str, str]:
    lines = (REPO / "k8s" / "base" / "config.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in upstreams)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""\
        worker_processes 1;
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log warn;
        events {{ worker_connections 256; }}
        http {{
          access_log {tmp}/access.log;
          client_body_temp_path {tmp}/body;
          proxy_temp_path {tmp}/proxy;
          fastcgi_temp_path {tmp}/fastcgi;
          uwsgi_temp_path {tmp}/uwsgi;
          scgi_temp_path {tmp}/scgi;
          upstream dds {{
        {servers}
          }}
          server {{
            listen 127.0.0.1:{port};
            client_max_body_size 10m;
            location / {{
              proxy_pass http://dds;
              proxy_bind {INGRESS_ADDRESS};
              proxy_set_header Host {HOST};
              # As ingress-nginx at the edge: the client's address replaces whatever
              # X-Forwarded-For the client sent; TLS ends here.
              proxy_set_header X-Forwarded-For $remote_addr;
              proxy_set_header X-Forwarded-Proto https;
              proxy_read_timeout 300s;
            }}
          }}
        }}
        """))
    return conf


def _wait_http(url: str, proc: subprocess.Popen, log: Path, what: str, **kw) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=2, **kw).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


class Shape:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.logs: dict[str, Path] = {}

    def spawn(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _entrypoint(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([ENTRYPOINT, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def fresh_database():
    name = f"dds_shape_{secrets.token_hex(4)}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_deployed_shape_delivers_through_the_ingress(tmp_path, fresh_database):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx is missing (apt-get install nginx)"
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    assert os.access(redis_server, os.X_OK), "redis-server is missing (apt-get install redis)"
    moto_port, nginx_port, redis_port = free_port(), free_port(), free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    shape = Shape(tmp_path)
    # A Redis of this run's own (broker and cache): nothing shared with any other test.
    shape.spawn("redis", [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(tmp_path)], {})
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DDS_", "DATABASE_", "AWS_", "DJANGO_", "CELERY_",
                                 "EMAIL_", "REDIS_"))}
    env = {**base, **_config_env(),
           # The Secret's keys (k8s/base/externalsecret.yaml), made for this run.
           "SECRET_KEY": secrets.token_urlsafe(64), "DDS_SEALING_KEY": secrets.token_hex(32),
           "DDS_AUDIT_KEY": secrets.token_hex(32), "DATABASE_URL": fresh_database,
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/{BROKER_DB}",
           "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
           "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
           "AWS_S3_REGION_NAME": "eu-north-1", "AWS_ACCESS_KEY_ID": "testing-key-id",
           "AWS_SECRET_ACCESS_KEY": "testing-secret",
           # This machine's stand-ins for the cluster's names and addresses.
           "ALLOWED_HOSTS": HOST, "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
           "DDS_PUBLIC_URL": f"http://127.0.0.1:{nginx_port}",
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/{CACHE_DB}",
           "DDS_TRUSTED_PROXIES": INGRESS_ADDRESS, "DDS_VAR_DIR": str(tmp_path / "var"),
           "STATIC_ROOT": str(tmp_path / "static"), "PYTHON": sys.executable,
           "DJANGO_SETTINGS_MODULE": "ddsite.settings", "PYTHONUNBUFFERED": "1",
           "DDS_WORKER_HEARTBEAT_FILE": str(tmp_path / "worker-heartbeat"),
           "GUNICORN_WORKERS": "1"}
    try:
        import redis

        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=redis_port).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, shape.logs["redis"].read_text()
                time.sleep(0.2)
        # The migration Job, started three times at once on a fresh database.
        runs = [subprocess.Popen([ENTRYPOINT, "migrate"], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(3)]
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], "\n".join(outputs)[-4000:]
        plan = _entrypoint(env, "manage", "showmigrations", "--plan")
        assert plan.returncode == 0 and "[ ]" not in plan.stdout, plan.stdout[-2000:]

        # The world: a unit with two admins, and a researcher (through the services).
        setup = _entrypoint(env, "manage", "shell", "-c", textwrap.dedent("""\
            import json, secrets
            from accounts.models import Role
            from accounts.services import unit_create, user_create
            unit = unit_create(name="Shape", display_name="Shape facility",
                               contact_email="facility@example.org", internal_ref="shape")
            out = {}
            for name, role in (("shape-admin", Role.UNIT_ADMIN),
                               ("shape-admin2", Role.UNIT_ADMIN),
                               ("shape-res", Role.RESEARCHER)):
                pw = "Pw-" + secrets.token_urlsafe(12)
                user_create(username=name, email=f"{name}@example.org", name=name,
                            password=pw, role=role, unit=unit if role != Role.RESEARCHER
                            else None)
                out[name] = pw
            print(json.dumps(out))
            """))
        assert setup.returncode == 0, setup.stderr[-3000:]
        import json

        passwords = json.loads(setup.stdout.strip().splitlines()[-1])

        worker_metrics = free_port()
        (tmp_path / "worker-metrics").mkdir()
        worker = shape.spawn("worker", [ENTRYPOINT, "worker"], {
            **env, "DDS_METRICS_PORT": str(worker_metrics), "DDS_METRICS_ADDR": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics")})
        webs, metrics_ports = [], []
        for i in (1, 2):
            port, metrics_port = free_port(), free_port()
            webs.append(port)
            metrics_ports.append(metrics_port)
            proc = shape.spawn(f"web{i}", [ENTRYPOINT, "web"],
                               {**env, "DDS_BIND": f"127.0.0.1:{port}",
                                "DDS_METRICS_PORT": str(metrics_port)})
            _wait_http(f"http://127.0.0.1:{port}/healthz", proc, shape.logs[f"web{i}"],
                       f"web{i}")
        conf = _nginx_conf(tmp_path, nginx_port, webs)
        ingress = shape.spawn("nginx", [nginx, "-c", str(conf), "-g", "daemon off;"], env)
        _wait_http(f"http://127.0.0.1:{nginx_port}/healthz", ingress, shape.logs["nginx"],
                   "nginx")

        # The kubelet's probes: plain HTTP to the pod, Host = the pod's IP and port.
        for port in webs:
            for path in ("/healthz", "/readyz"):
                probe = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5,
                                  headers={"Host": "10.42.7.31:8000"})
                assert probe.status_code == 200, (path, probe.text)
            refused = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5,
                                headers={"Host": "10.42.7.31:8000"})
            assert refused.status_code == 400
        deadline = time.monotonic() + 60
        while _entrypoint(env, "probe-worker").returncode != 0:
            assert worker.poll() is None and time.monotonic() < deadline, \
                shape.logs["worker"].read_text()[-3000:]
            time.sleep(0.5)

        # A CronJob's command, as the CronJob runs it.
        cron = _entrypoint(env, "manage", "projects_expire")
        assert cron.returncode == 0, cron.stderr[-2000:]

        # A whole delivery through the ingress with the real dds command.
        url = f"http://127.0.0.1:{nginx_port}"

        def runner(username: str) -> DDS:
            user = SimpleNamespace(username=username, email=f"{username}@example.org")
            dds = DDS(url, tmp_path / f"{username}-config", user, passwords[username],
                      server=mailbox)
            dds.login()
            return dds

        staff, researcher = runner("shape-admin"), runner("shape-res")
        r = staff("project", "create", "-t", "Shape delivery", "-pi", "Prof. P", "--json",
                  "--force")
        assert r.code == 0, r.err
        project = json.loads(r.out)["id"]
        data = tmp_path / "data"
        (data / "reads").mkdir(parents=True)
        (data / "reads" / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
        (data / "reads" / "small.txt").write_text("ACGT\n" * 1000)
        (data / "empty.txt").write_bytes(b"")
        r = staff("data", "put", "-p", project, "-s", str(data), "--num-threads", "4",
                  "--silent")
        assert r.code == 0 and "3 file(s) uploaded" in r.err, r.err
        r = staff("project", "access", "grant", "-p", project, "-e", "shape-res@example.org")
        assert r.code == 0, r.err
        r = staff("project", "status", "release", "-p", project, "--deadline", "10")
        assert r.code == 0 and "Available" in r.err, r.err
        out = tmp_path / "out"
        r = researcher("data", "get", "-p", project, "--get-all", "-d", str(out),
                       "--silent")
        assert r.code == 0, r.err
        assert tree(out / "data") == tree(data)

        # Client addresses: nginx's view of the client, never nginx itself, and never what
        # a client claims. 20 failures from one client lock that client only.
        spoofed = httpx.post(f"{url}/api/v1/auth/login", timeout=30,
                             json={"username": "nobody", "password": "Wrong-pass-1"},
                             headers={"X-Forwarded-For": "6.6.6.6"})
        assert spoofed.status_code == 401
        other = httpx.Client(base_url=url, timeout=30,
                             transport=httpx.HTTPTransport(local_address="127.0.0.3"))
        statuses = [other.post("/api/v1/auth/login", json={
            "username": f"ghost{i}", "password": "Wrong-pass-1"}).status_code
            for i in range(21)]
        assert statuses[:19] == [401] * 19 and statuses[-1] == 429, statuses
        assert other.post("/api/v1/auth/login", json={
            "username": "shape-res", "password": passwords["shape-res"]}).status_code == 429
        ok = httpx.post(f"{url}/api/v1/auth/login", timeout=60, json={
            "username": "shape-res", "password": passwords["shape-res"]})
        assert ok.status_code == 200, ok.text
        with psycopg.connect(fresh_database.replace("postgres://", "postgresql://")) as conn:
            rows = [(action, str(ip) if ip else None) for action, ip in conn.execute(
                "SELECT action, ip FROM projects_auditevent").fetchall()]
        ips = {ip for _, ip in rows if ip}
        assert {"127.0.0.1", "127.0.0.3"} <= ips, ips
        assert INGRESS_ADDRESS not in ips and "6.6.6.6" not in ips, [
            r for r in rows if r[1] in (INGRESS_ADDRESS, "6.6.6.6")]
        assert ("auth.lock", "127.0.0.3") in rows
        # What Prometheus scrapes from the pods (never through the ingress).
        from core.logging_json import assert_no_secrets, parse_json_lines
        from core.metrics import scrape, total

        scraped = [scrape(f"http://127.0.0.1:{p}/metrics")[0] for p in metrics_ports]
        assert sum(total(s, "dds_logins_total", outcome="ok") for s in scraped) == 2
        assert sum(total(s, "dds_logins_total", outcome="locked") for s in scraped) >= 1
        assert sum(total(s, "dds_http_requests_total") for s in scraped) > 10
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 404
        worker_samples, _ = scrape(f"http://127.0.0.1:{worker_metrics}/metrics")
        assert total(worker_samples, "dds_celery_tasks_total", task="mail.tasks.mail_send",
                     outcome="success") >= 3
        # Every line of every DDS process is JSON, and none holds a password or a code.
        secret_values = list(passwords.values())
        codes = [m.group(1) for _, body in mailbox.messages
                 for m in [re.search(r"\b(\d{8})\b", body)] if m]
        for name in ("web1", "web2", "worker"):
            text = shape.logs[name].read_text(errors="replace")
            assert parse_json_lines(text), name
            assert_no_secrets(text, secret_values + codes)
        # The ingress spread the work over both pods.
        for name in ("web1", "web2"):
            assert "/api/v1/" in shape.logs[name].read_text(), name
        for name, log in shape.logs.items():
            # The one deliberate bad request (a pod-IP Host off the probe paths) is logged
            # by Django as DisallowedHost; nothing else may have failed.
            lines = [line for line in log.read_text(errors="replace").splitlines()
                     if "DisallowedHost" not in line]
            assert not [x for x in lines if "Traceback" in x], f"{name}:\n{lines[-30:]}"
            assert not [x for x in lines if "Control server error" in x], name
    finally:
        shape.stop()
        smtp.stop()
        moto.stop()
