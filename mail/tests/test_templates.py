"""Emails are rendered from templates: the text part is not HTML-escaped, the HTML part is."""

from types import SimpleNamespace

import pytest
from django.core import mail
from django.test import TestCase

from mail.models import OutboundEmail
from mail.services import mail_render, mail_send_template


def test_text_is_plain_and_html_is_escaped():
    by = SimpleNamespace(name="Ada <Lovelace> & Co")
    project = SimpleNamespace(public_id="u1-00001", title="R&D <draft>")
    subject, text, html = mail_render("accounts/invite", {
        "by": by, "project": project, "role_label": "Researcher", "days": 7,
        "link": "https://dds.example.org/accounts/register/?t=x&y=1", "where": ""})
    assert "\n" not in subject
    assert "R&D <draft>" in text and "&amp;" not in text
    assert html is not None and "R&amp;D &lt;draft&gt;" in html and "<draft>" not in html


def test_a_template_without_html_gives_text_only():
    project = SimpleNamespace(public_id="u1-00001", title="T")
    subject, text, html = mail_render("projects/released",
                                      {"project": project, "deadline": "2027-01-01"})
    assert subject.endswith("Data available in project u1-00001")
    assert "dds data get -p u1-00001 --get-all" in text and html is None


@pytest.mark.django_db
def test_a_templated_email_is_queued_sealed_and_sent_with_both_parts():
    project = SimpleNamespace(public_id="u1-00001", title="Secret title")
    with TestCase.captureOnCommitCallbacks(execute=True):
        mail_send_template(template="accounts/invite", to=["r@example.org"], context={
            "by": SimpleNamespace(name="Ada"), "project": project, "role_label": "Researcher",
            "days": 7, "link": "https://dds.example.org/r?t=SECRET", "where": ""})
    assert not OutboundEmail.objects.exists()  # sent and deleted
    sent = mail.outbox[-1]
    assert sent.to == ["r@example.org"] and "SECRET" in sent.body
    assert sent.alternatives and sent.alternatives[0][1] == "text/html"
