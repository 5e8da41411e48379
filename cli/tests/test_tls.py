"""`dds` over TLS: the API and storage clients share one context with httpx's trust.

A real HTTPS server on loopback with a certificate from a throw-away CA (made here, in
memory and tmp_path: no key is a fixture file). Trusted through ``SSL_CERT_FILE`` the API
and the storage clients reach it; without that the API call fails with a clear error
that names the server, not a traceback.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cli.client import Api
from cli.errors import Unreachable
from cli.tls import tls_context
from cli.transfer import storage_client


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, CA file, paths asked for) of an HTTPS server answering ``{}``."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("dds test CA", ca_key, None, ca_key, ca=True)
    leaf = _cert("127.0.0.1", key, ca.subject, ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:  # http.server's name
            seen.append(self.path)
            body = json.dumps({}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", tmp_path / "ca.pem", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    tls_context.cache_clear()  # the context reads SSL_CERT_FILE when it is first made
    yield
    tls_context.cache_clear()


def test_api_and_storage_trust_ssl_cert_file_through_one_context(https, monkeypatch):
    url, ca_file, seen = https
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    api = Api(url, authenticated=False)
    storage = storage_client(1)
    try:
        assert api.get("motd") == {}
        assert storage.get(f"{url}/bucket/key").status_code == 200
    finally:
        api.close()
        storage.close()
    assert seen == ["/api/v1/motd", "/bucket/key"]
    assert tls_context.cache_info().misses == 1  # one CA bundle load for both clients


def test_an_untrusted_certificate_is_a_clear_error(https, monkeypatch):
    url, _ca_file, seen = https
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    api = Api(url, authenticated=False)
    try:
        with pytest.raises(Unreachable) as caught:
            api.get("motd")
    finally:
        api.close()
    assert url in str(caught.value) and "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert seen == []
