"""One client address behind the ingress: X-Forwarded-For from trusted proxies only."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from core.client_ip import TrustedProxyMiddleware, client_ip, client_ip_from_meta
from core.log_redaction import redact

INGRESS = ["10.42.0.0/16"]


def _meta(peer: str, xff: str | None = None) -> dict:
    meta = {"REMOTE_ADDR": peer}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return meta


@override_settings(DDS_TRUSTED_PROXIES=INGRESS)
@pytest.mark.parametrize("peer, xff, expected", [
    # Straight from a client: the socket address, whatever it claims.
    ("198.51.100.7", None, "198.51.100.7"),
    ("198.51.100.7", "203.0.113.1", "198.51.100.7"),
    # Through the ingress: the hop the ingress appended.
    ("10.42.0.5", "203.0.113.1", "203.0.113.1"),
    # A client-written prefix is ignored: right to left, first untrusted hop wins.
    ("10.42.0.5", "6.6.6.6, 203.0.113.1", "203.0.113.1"),
    # Two trusted hops (ingress behind a load balancer in the same network).
    ("10.42.0.5", "203.0.113.1, 10.42.9.9", "203.0.113.1"),
    # Garbage written by the client stops the walk at the last good hop.
    ("10.42.0.5", "not-an-ip, 10.42.9.9", "10.42.9.9"),
    ("10.42.0.5", "", "10.42.0.5"),
    # Ports and IPv6 forms.
    ("10.42.0.5", "203.0.113.1:51234", "203.0.113.1"),
    ("10.42.0.5", "[2001:db8::1]:443", "2001:db8::1"),
    ("::ffff:10.42.0.5", "2001:db8::2", "2001:db8::2"),
    ("", "203.0.113.1", None),
])
def test_client_ip_from_meta(peer, xff, expected):
    assert client_ip_from_meta(_meta(peer, xff)) == expected


@override_settings(DDS_TRUSTED_PROXIES=[])
def test_nothing_trusted_means_the_socket_peer():
    assert client_ip_from_meta(_meta("10.42.0.5", "203.0.113.1")) == "10.42.0.5"


@override_settings(DDS_TRUSTED_PROXIES=INGRESS)
def test_forwarding_headers_from_an_untrusted_peer_are_dropped():
    seen = {}

    def view(request):
        seen["proto"] = request.META.get("HTTP_X_FORWARDED_PROTO")
        seen["ip"] = client_ip(request)
        return None

    middleware = TrustedProxyMiddleware(view)
    middleware(RequestFactory().get("/", REMOTE_ADDR="198.51.100.7",
                                    HTTP_X_FORWARDED_PROTO="https",
                                    HTTP_X_FORWARDED_FOR="203.0.113.1"))
    assert seen == {"proto": None, "ip": "198.51.100.7"}
    middleware(RequestFactory().get("/", REMOTE_ADDR="10.42.0.5",
                                    HTTP_X_FORWARDED_PROTO="https",
                                    HTTP_X_FORWARDED_FOR="203.0.113.1"))
    assert seen == {"proto": "https", "ip": "203.0.113.1"}


def test_bad_trusted_proxy_setting_refuses_to_start(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ddsite.settings", "DEBUG": "1",
           "DDS_VAR_DIR": str(tmp_path), "DDS_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}
    from django.conf import settings

    result = subprocess.run([sys.executable, "manage.py", "check"], env=env,
                            cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DDS_TRUSTED_PROXIES: 'nonsense' is not an IP address" in result.stderr


@pytest.mark.parametrize("line, secret", [
    ('"GET /accounts/register/?t=SECRETTOKEN HTTP/1.1" 302', "SECRETTOKEN"),
    ('"GET /accounts/reset/MTI/SECRET-TOKEN/ HTTP/1.1" 200', "SECRET-TOKEN"),
    ("Bad Request: /accounts/reset/MTI/SECRET-TOKEN/", "SECRET-TOKEN"),
    ('"GET /accounts/totp/disable/SIGNEDTOKEN/ HTTP/1.1"', "SIGNEDTOKEN"),
    ('"POST /accounts/delete/SIGNEDTOKEN/ HTTP/1.1"', "SIGNEDTOKEN"),
    ('"PUT /storage/parts/STORAGETOKEN HTTP/1.1" 200', "STORAGETOKEN"),
    ("https://s3.example.se/b/k?X-Amz-Signature=SIGNATURE&X-Amz-Credential=C", "SIGNATURE"),
])
def test_redact_removes_query_strings_and_token_paths(line, secret):
    out = redact(line)
    assert secret not in out and "[redacted]" in out


@pytest.mark.parametrize("name", [p.name for p in __import__(
    "transfers.storage_urls", fromlist=["urlpatterns"]).urlpatterns])
def test_every_signed_storage_route_is_redacted(name):
    """Each route of the local backend's signed URLs (the token is the whole authorisation;
    a logged single-PUT URL could rewrite a stored file) is redacted: one that is added
    later is covered by this list of the routes, not by a list kept by hand."""
    from django.urls import reverse

    path = reverse(name, args=["eyJ0b2tlbiI6MX0.SIGNEDTOKEN:1xYdjt:Qlf"])
    for line in (f'"PUT {path} HTTP/1.1" 200', f"Forbidden: {path}",
                 f"http://127.0.0.1:8000{path}"):
        out = redact(line)
        assert "SIGNEDTOKEN" not in out and "[redacted]" in out, out


def test_ingress_and_app_trust_the_same_networks():
    """The app's trusted proxies, gunicorn's and the ingress controller's come from one
    value: the ConfigMap's DDS_TRUSTED_PROXIES."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    app = dict(line.split("=", 1) for line in (root / "k8s/base/config.env").read_text()
               .splitlines() if line and not line.startswith("#"))
    ingress = yaml.safe_load((root / "k8s/cluster/ingress-nginx-controller.yaml").read_text())
    assert app["DDS_TRUSTED_PROXIES"] == ingress["data"]["proxy-real-ip-cidr"]
    assert ingress["data"]["use-forwarded-headers"] == "false"
    entrypoint = (root / "docker/entrypoint.sh").read_text()
    assert '--forwarded-allow-ips "${DDS_TRUSTED_PROXIES' in entrypoint
    assert "--logger-class ddsite.gunicorn_logging.Logger" in entrypoint


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=utf-8"])
def test_deep_json_is_refused_whatever_the_media_type_case(client, content_type):
    body = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/v1/auth/login", body, content_type=content_type)
    assert r.status_code == 400 and "nested deeper" in r.json()["detail"]


def test_invented_http_methods_do_not_grow_the_metrics():
    from core.metrics import HTTP_REQUESTS, http_request

    before = {tuple(sorted(s.labels.items())) for m in HTTP_REQUESTS.collect()
              for s in m.samples}
    for i in range(5):
        http_request(method=f"XMETHOD{i}", route="version", status=405, seconds=0.001)
    after = {tuple(sorted(s.labels.items())) for m in HTTP_REQUESTS.collect()
             for s in m.samples}
    methods = {dict(labels).get("method") for labels in after - before}
    assert methods <= {"other"}
