"""The researcher's whole journey in a real Chromium against the live server.

Invite link from the test outbox → register → log in with the emailed code → set up the
authenticator app → log out and in with it → open the released project → browse into a
folder → download a file (bytes compared) → invite a second researcher as the owner.
Every page is checked for unlabelled form controls and Content-Security-Policy
violations. With DDS_SCREENSHOTS=<dir> (``make screenshots``) the main pages are saved
there as PNG.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from django.core import mail
from django_otp.oath import totp

# A missing browser is a failure, not a skip: this is the one test of the pages in a
# real browser (.ci/run installs both).
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:
    raise ImportError("playwright is not installed in this virtualenv: "
                      "pip install -r requirements-dev.txt") from exc

from accounts.models import Invite, Role
from accounts.tests.factories import UnitFactory
from keys.tests.helpers import keyed_user
from portal.tests.conftest import FILES
from portal.tests.helpers import deliver
from projects.services import invite_to_project, project_create, project_release

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "Journey-" + "x9Q" * 4


@pytest.fixture(scope="module")
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed (looked on PATH and at {CHROMIUM}): "
                    "apt-get install chromium", pytrace=False)
    return CHROMIUM

# Run in the page: form controls without a label, buttons and links without a name,
# images without alt text. Equivalent to axe's label / button-name / link-name /
# image-alt rules for what our pages contain.
A11Y_SCRIPT = """() => {
  const bad = [];
  const visible = (el) => el.type !== 'hidden' && !el.closest('[hidden]');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (!visible(el) || ['submit', 'button'].includes(el.type)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby');
    if (!named) bad.push('unlabelled ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!visible(el)) continue;
    if (!(el.textContent.trim() || el.getAttribute('aria-label')))
      bad.push('no name ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('img')) {
    if (!el.hasAttribute('alt')) bad.push('no alt ' + el.outerHTML.slice(0, 80));
  }
  if (!document.documentElement.lang) bad.push('no lang');
  if (!document.querySelector('h1')) bad.push('no h1');
  return bad;
}"""


def _wait_for_mail(address: str, pattern: str, seen: int, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in mail.outbox[seen:]:
            found = re.search(pattern, message.body)
            if address in message.to and found:
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no mail matching {pattern!r} to {address}")


class Journey:
    def __init__(self, page, shots: Path | None):
        self.page = page
        self.shots = shots
        self.csp_violations: list[str] = []
        page.on("console", lambda m: "Content Security Policy" in m.text
                and self.csp_violations.append(m.text))

    def check(self, name: str | None = None) -> None:
        """Accessibility assertions on the current page, and its screenshot."""
        problems = self.page.evaluate(A11Y_SCRIPT)
        assert problems == [], (self.page.url, problems)
        assert self.csp_violations == [], self.csp_violations
        if name and self.shots:
            self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def released(db, settings, tmp_path, live_server):
    settings.DDS_STORAGE_BACKEND = "local"
    settings.DDS_LOCAL_STORAGE_ROOT = tmp_path / "storage"
    settings.DDS_LOCAL_STORAGE_URL = live_server.url
    settings.DDS_PUBLIC_URL = live_server.url
    unit = UnitFactory(display_name="National Genomics Infrastructure")
    staff, _, staff_kek = keyed_user(Role.UNIT_ADMIN, unit=unit)
    keyed_user(Role.UNIT_ADMIN, unit=unit)
    project = project_create(unit=unit, by=staff, title="Mouse genomes", pi="Prof. Ada",
                             description="Whole-genome sequencing, 2 samples.", force=True)
    project.refresh_from_db()
    deliver(project, staff, staff_kek, FILES)
    project = project_release(project=project, by=staff, deadline_days=30)
    seen = len(mail.outbox)
    invite_to_project(project=project, email="ada@example.org", by=staff, by_kek=staff_kek,
                      role=Role.RESEARCHER, is_owner=True)
    link = _wait_for_mail("ada@example.org", r"(https?://\S+/accounts/register/\?t=\S+)",
                          seen)
    return project, link


@pytest.mark.django_db(transaction=True)
def test_researcher_journey_in_chromium(chromium, released, live_server, tmp_path):
    project, invite_link = released
    shots = Path(os.environ["DDS_SCREENSHOTS"]) if os.environ.get("DDS_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860},
                                      accept_downloads=True)
        context.set_default_timeout(15_000)
        page = context.new_page()
        j = Journey(page, shots)

        # Invite link → registration (the token leaves the address bar at once).
        page.goto(invite_link)
        expect(page).to_have_url(f"{live_server.url}/accounts/register/")
        expect(page.get_by_text("ada@example.org")).to_be_visible()
        j.check("register")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Name", exact=True).fill("Ada Lovelace")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_label(re.compile("accept the user agreement")).check()
        page.get_by_role("button", name="Register").click()
        expect(page.get_by_text("Your account is ready")).to_be_visible()

        # Log in with the emailed code; land on the project list.
        seen = len(mail.outbox)
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        j.check("login")
        page.get_by_role("button", name="Continue").click()
        code = _wait_for_mail("ada@example.org", r"\b(\d{8})\b", seen)
        expect(page.get_by_text("8-digit code")).to_be_visible()
        j.check("login-code")
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
        expect(page.get_by_text("expires in 30 days")).to_be_visible()
        expect(page.get_by_role("cell", name="Project Owner")).to_be_visible()
        j.check("projects")

        # Authenticator app: QR code, then a code from the key shown beside it.
        page.get_by_role("link", name=re.compile("^Account")).click()
        page.get_by_role("button", name="Set up an authenticator app").click()
        expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
        j.check()
        key = base64.b32decode(page.locator(".card code").inner_text())
        page.get_by_label("Code", exact=True).fill(f"{totp(key):06d}")
        page.get_by_role("button", name="Turn on").click()
        expect(page.get_by_text("Authenticator app enabled.")).to_be_visible()
        confirmed_step = int(time.time() // 30)  # the server verified at this step or before
        expect(page.get_by_role("cell", name=re.compile("this one"))).to_be_visible()
        j.check("account")

        # Log out, log in again with the app. A step once used is never accepted again,
        # and the device follows the drift of the code that confirmed it (django-otp: a
        # code typed just before a step boundary and checked after it sets drift -1), so
        # a code of a later step is not always accepted: wait for the next step and use
        # the current code, which every drift of -1, 0 (and +1) accepts.
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(page.get_by_text("You are logged out everywhere.")).to_be_visible()
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text("authenticator app")).to_be_visible()
        while int(time.time() // 30) <= confirmed_step:
            time.sleep(0.2)
        page.get_by_label("Code", exact=True).fill(f"{totp(key):06d}")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Your projects")).to_be_visible()

        # The released project; into a folder; download a file.
        page.get_by_role("link", name="Mouse genomes").click()
        expect(page.get_by_role("heading", name="Mouse genomes")).to_be_visible()
        page.get_by_role("link", name="reads/").click()
        crumbs = page.get_by_role("navigation", name="Folder")
        expect(crumbs.get_by_text("reads")).to_be_visible()
        expect(page.get_by_role("cell", name="sample1.fastq", exact=True)).to_be_visible()
        page.get_by_text("Large delivery? Use the command line").click()
        expect(page.locator("#cli-command")).to_have_text(
            f"dds data get -p {project.public_id} -s reads")
        j.check("project")
        with page.expect_download() as info:
            page.get_by_role("link", name="Download sample1.fastq").click()
        download = info.value
        assert download.suggested_filename == "sample1.fastq"
        assert download.failure() is None
        assert Path(download.path()).read_bytes() == FILES["reads/sample1.fastq"]

        # Search by name from the project root.
        page.get_by_role("navigation", name="Folder").get_by_role(
            "link", name=project.public_id).click()
        page.get_by_label("Search file names").fill("report")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("cell", name="reads/qc/report.html", exact=True)).to_be_visible()

        # As the owner, invite a second researcher.
        seen = len(mail.outbox)
        page.get_by_label("Email address").fill("bob@example.org")
        page.get_by_role("button", name="Invite", exact=True).click()
        expect(page.get_by_text("Invited bob@example.org.")).to_be_visible()
        expect(page.locator(".invites")).to_contain_text("bob@example.org")
        j.check("people")
        _wait_for_mail("bob@example.org", r"(/accounts/register/\?t=\S+)", seen)

        # Narrow screens: the same list, stacked.
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(f"{live_server.url}/")
        j.check("projects-mobile")
        page.goto(f"{live_server.url}/no/such/page/")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        j.check("404")
        browser.close()
    # (Django refuses ORM calls while Playwright's event loop runs in this thread.)
    assert Invite.objects.filter(email="bob@example.org", project=project).exists()


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_under_the_csp(chromium, live_server):
    """/api/docs/ draws the API's operations from local files, with no CSP violation."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        violations: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m: "Content Security Policy" in m.text
                and violations.append(m.text))
        page.on("request", lambda r: not r.url.startswith(live_server.url)
                and not r.url.startswith("data:") and outside.append(r.url))
        page.goto(f"{live_server.url}/api/docs/")
        expect(page.get_by_text("/api/v1/auth/login").first).to_be_visible()
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("DDS API")
        browser.close()
    assert violations == [] and outside == []
