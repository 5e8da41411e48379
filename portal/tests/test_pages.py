"""Portal pages with the test client: list, project page, browser, people, headers."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core import mail

from accounts.models import MOTD, Invite, Maintenance
from accounts.tests.helpers import PortalClient
from portal import views
from portal.selectors import project_list_rows
from projects.models import ProjectMembership
from projects.selectors import project_role_of
from projects.services import project_retract

pytestmark = pytest.mark.django_db


def test_root_is_the_project_list_and_needs_login(delivery):
    anonymous = PortalClient().get("/")
    assert anonymous.status_code == 302 and anonymous.url.startswith("/accounts/login/")
    page = delivery.client().get("/")
    body = page.content.decode()
    assert page.status_code == 200
    assert delivery.project.title in body and delivery.project.public_id in body
    assert "Available" in body and "expires in 30 days" in body
    assert "Project Owner" in body and "5 files" in body


def test_project_list_roles_without_a_query_per_project(delivery, django_assert_num_queries):
    for user in (delivery.owner, delivery.researcher, delivery.staff):
        with django_assert_num_queries(1):
            rows = project_list_rows(user)
        assert [r.role for r in rows] == [project_role_of(user, delivery.project)]


def test_project_page_browses_folders_with_breadcrumbs(delivery):
    client = delivery.client()
    url = f"/projects/{delivery.project.public_id}/"
    root = client.get(url).content.decode()
    assert "reads/" in root and "README.txt" in root and "Status history" in root
    assert f"dds data get -p {delivery.project.public_id} --get-all" in root
    sub = client.get(url, {"folder": "reads"}).content.decode()
    assert "sample1.fastq" in sub and "qc/" in sub and "README.txt" not in sub
    assert 'aria-current="page">reads</span>' in sub
    assert "dds data get -p" in sub and "-s reads" in sub


def test_search_and_pagination(delivery, monkeypatch):
    client = delivery.client()
    url = f"/projects/{delivery.project.public_id}/"
    found = client.get(url, {"q": "sample"}).content.decode()
    assert "reads/sample1.fastq" in found and "reads/sample2.fastq" in found
    assert "README.txt" not in found
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    first = client.get(url, {"folder": "reads"}).content.decode()
    assert "offset=2" in first and "Next" in first and "sample2.fastq" not in first
    second = client.get(url, {"folder": "reads", "offset": "2"}).content.decode()
    assert "sample2.fastq" in second and "Previous" in second


@pytest.mark.parametrize("query, status", [
    ({"folder": "../etc"}, 400), ({"folder": "nope"}, 404), ({"offset": "x"}, 400),
    ({"q": "a" * 300}, 400),
])
def test_bad_input_is_a_clear_4xx(delivery, query, status):
    r = delivery.client().get(f"/projects/{delivery.project.public_id}/", query)
    assert r.status_code == status
    assert b"<h1>" in r.content and b"Traceback" not in r.content


def test_other_projects_are_404_and_in_progress_is_closed(delivery):
    client = delivery.client(delivery.researcher)
    assert client.get("/projects/nope-00001/").status_code == 404
    project_retract(project=delivery.project, by=delivery.staff)
    page = client.get(f"/projects/{delivery.project.public_id}/").content.decode()
    assert "can be listed only while Available" in page
    r = client.get(f"/projects/{delivery.project.public_id}/download/file",
                   {"path": "README.txt"})
    assert r.status_code == 403 and b"only while Available" in r.content


def test_people_section_and_owner_only_actions(delivery):
    url = f"/projects/{delivery.project.public_id}/"
    owner_page = delivery.client().get(url).content.decode()
    assert delivery.researcher.email in owner_page and "Invite a researcher" in owner_page
    plain = delivery.client(delivery.researcher)
    assert "Invite a researcher" not in plain.get(url).content.decode()
    r = plain.post(url + "people/invite", {"email": "eve@example.org"})
    assert r.status_code == 403
    assert not Invite.objects.filter(email="eve@example.org").exists()


def test_owner_invites_sets_owner_and_revokes(delivery):
    client = delivery.client()
    base = f"/projects/{delivery.project.public_id}/people/"
    r = client.post(base + "invite", {"email": "newbie@example.org", "owner": "on"})
    assert r.status_code == 302 and r.url.endswith("#people")
    invite = Invite.objects.get(email="newbie@example.org")
    assert invite.is_owner and invite.project_id == delivery.project.pk
    assert any("/accounts/register/?t=" in m.body for m in mail.outbox
               if "newbie@example.org" in m.to)
    page = client.get(f"/projects/{delivery.project.public_id}/").content.decode()
    assert "newbie@example.org" in page and "Invited newbie@example.org" in page
    bad = client.post(base + "invite", {"email": "not-an-email"}, follow=True)
    assert "Enter a valid email address" in bad.content.decode()

    name = delivery.researcher.username
    client.post(base + f"{name}/owner", {"owner": "1"})
    assert ProjectMembership.objects.get(user=delivery.researcher).is_owner
    client.post(base + f"{name}/revoke")
    assert not ProjectMembership.objects.filter(user=delivery.researcher).exists()
    missing = client.post(base + f"{name}/revoke", follow=True)
    assert missing.status_code == 200 and "is not a member" in missing.content.decode()


def test_security_headers_and_cookies(delivery):
    client = delivery.client()
    for url in ("/", "/accounts/login/", "/accounts/", "/nope/"):
        r = client.get(url)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.cookies["sessionid"]["httponly"]
    assert client.cookies["dds_ks"]["httponly"]


def test_no_inline_script_or_style_in_pages(delivery):
    client = delivery.client()
    client.post("/accounts/totp/setup/")  # the QR code page too
    for url in ("/", f"/projects/{delivery.project.public_id}/", "/accounts/",
                "/accounts/login/"):
        html = client.get(url).content.decode()
        assert " style=" not in html and "<style" not in html
        assert "<script>" not in html and "javascript:" not in html


class _Forms(HTMLParser):
    """Collects form controls and the ids that a <label for> names."""

    def __init__(self):
        super().__init__()
        self.controls, self.labelled = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") not in (
                "hidden", "submit", "button"):
            self.controls.append(a)


def unlabelled(html: str) -> list[dict]:
    p = _Forms()
    p.feed(html)
    return [c for c in p.controls if c.get("id") not in p.labelled
            and not c.get("aria-label") and not c.get("aria-labelledby")]


def test_every_form_control_has_a_label(delivery):
    client = delivery.client()
    client.post("/accounts/totp/setup/")
    pages = ["/", f"/projects/{delivery.project.public_id}/", "/accounts/",
             "/accounts/password/change/"]
    for url in pages:
        assert unlabelled(client.get(url).content.decode()) == [], url
    anonymous = PortalClient()
    for url in ("/accounts/login/", "/accounts/password/reset/"):
        assert unlabelled(anonymous.get(url).content.decode()) == [], url


def test_motd_banner_and_maintenance_page(delivery):
    client = delivery.client()
    MOTD.objects.create(message="Storage upgrade on Friday")
    assert "Storage upgrade on Friday" in client.get("/").content.decode()
    Maintenance.objects.update_or_create(pk=1, defaults={"is_active": True,
                                                         "message": "Back at noon."})
    r = client.get("/")
    assert r.status_code == 503 and "Back at noon." in r.content.decode()
    assert r.headers["Retry-After"]
    api = client.get("/api/v1/projects")
    assert api.status_code == 503 and api.json()["code"] == "maintenance"
    assert PortalClient().get("/accounts/login/").status_code == 200
    Maintenance.objects.update_or_create(pk=1, defaults={"is_active": False})
    assert client.get("/").status_code == 200


def test_error_pages_in_the_site_style(delivery, client):
    r = delivery.client().get("/projects/x/y/z/")
    assert r.status_code == 404 and b"Page not found" in r.content
    assert b"dds.css" in r.content
    assert client.get("/api/v1/nothing-here").json() == {"detail": "Not found."}
    from django.test import RequestFactory

    page = views.server_error(RequestFactory().get("/"))
    assert page.status_code == 500 and b"Something went wrong" in page.content


def test_account_page_lists_sessions_and_ends_the_others(delivery):
    first = delivery.client()
    second = delivery.client()
    page = second.get("/accounts/").content.decode()
    assert "Active sessions" in page and "(this one)" in page and "Log out everywhere" in page
    r = second.post("/account/sessions/end-others")
    assert r.status_code == 302
    assert second.get("/accounts/").status_code == 200
    assert first.get("/").status_code == 302  # the other session is gone
