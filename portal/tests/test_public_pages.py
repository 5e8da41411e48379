"""Public pages (privacy, troubleshooting, technical overview, terms) and Swagger UI."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import override_settings

from accounts.models import Maintenance
from accounts.tests.helpers import PortalClient
from ddsite.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db

PAGES = {
    "/privacy/": ["Privacy policy", "What we store about you", "audit log",
                  "never store your password"],
    "/troubleshooting/": ["I lost my second factor", "reset your second factor",
                          "new</em> key pair", "access fix", "dds --log-file dds.log",
                          "run the same command again"],
    "/technical/": ["Crypt4GH", "encrypts every file on the facility", "own key pair",
                    "Argon2id", "Operators</strong> (who run the service) hold no project keys",
                    "server decrypts the file while sending it"],
    "/terms/": ["User agreement", "Version 1", "Your account is personal"],
}


class _Refs(HTMLParser):
    """Every URL a page makes the browser load (scripts, styles, icons, images)."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.loaded.append(a["src"])
            else:
                self._in_script = True
        elif tag == "link" and a.get("href"):
            self.loaded.append(a["href"])
        elif tag in ("img", "iframe") and a.get("src"):
            self.loaded.append(a["src"])
        elif tag == "style":
            self.inline_styles += 1
        if "style" in a:
            self.inline_styles += 1

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def _refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("path", "words"), PAGES.items())
def test_public_pages_open_without_login(path, words):
    r = PortalClient().get(path)
    body = " ".join(r.content.decode().split())
    assert r.status_code == 200, body[:500]
    for word in words:
        assert word in body, word
    assert r["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_the_footer_and_the_login_page_link_the_public_pages():
    login = PortalClient().get("/accounts/login/").content.decode()
    for path in PAGES:
        assert f'href="{path}"' in login, path  # the footer
    assert 'href="/api/docs/"' in login
    assert "Trouble logging in?" in login


def test_public_pages_stay_open_during_maintenance(settings):
    Maintenance.objects.update_or_create(id=1, defaults={"is_active": True})
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    client = PortalClient()
    assert client.get("/").status_code == 503
    # The troubleshooting and privacy pages help most while the rest is closed.
    assert {path: client.get(path).status_code for path in PAGES} == dict.fromkeys(PAGES, 200)


def test_a_facility_template_directory_overrides_a_page(tmp_path, settings):
    (tmp_path / "portal" / "public").mkdir(parents=True)
    (tmp_path / "portal" / "public" / "privacy.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Our own policy</h1>{% endblock %}')
    templates = [{**settings.TEMPLATES[0],
                  "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    with override_settings(TEMPLATES=templates):
        body = PortalClient().get("/privacy/").content.decode()
    assert "Our own policy" in body and "What we store about you" not in body


def test_the_terms_page_shows_the_version_in_force(settings):
    settings.DDS_USER_AGREEMENT_VERSION = "2027-01"
    body = PortalClient().get("/terms/").content.decode()
    assert "Version 2027-01" in body


# --------------------------------------------------------------------------- Swagger UI


def _local(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


def _swagger_check(client, *, assets: bool = False):
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    refs = _refs(html)
    # Only our own static files and the init script: no CDN, nothing inline that the CSP
    # would refuse.
    assert refs.loaded and all(_local(u) for u in refs.loaded), refs.loaded
    assert refs.inline_scripts == 0 and refs.inline_styles == 0
    assert not re.search(r"https?://", re.sub(r"<!--.*?-->", "", html, flags=re.S))
    assert any("swagger-ui-dist/swagger-ui-bundle.js" in u for u in refs.loaded)
    assert any(u.startswith("/static/drf_spectacular_sidecar/") for u in refs.loaded)
    script_url = next(u for u in refs.loaded if "script" in u and u.startswith("/api/docs/"))
    script = client.get(script_url)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"/api/v1/schema"' in script.content.decode()
    assert '"validatorUrl": null' in script.content.decode()  # no badge from swagger.io
    for url in refs.loaded if assets else ():
        if url.startswith("/static/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert b"".join(asset.streaming_content) if asset.streaming else asset.content
    return refs


def test_swagger_ui_is_served_from_local_static_files():
    _swagger_check(PortalClient())


def test_swagger_ui_with_debug_off(settings):
    # Production shape: DEBUG off, whitenoise serving the app directories' static files
    # (in the image they are collected; autorefresh finds them without collectstatic).
    settings.DEBUG = False
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True
    _swagger_check(PortalClient(), assets=True)
