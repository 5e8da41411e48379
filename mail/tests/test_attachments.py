"""Attachments (the monthly usage CSV): sealed with the email, sent as attachments; an
email without them is sent as before."""

import json

import pytest
from django.core import mail
from django.test import TestCase

from core.sealing import unseal
from mail.models import OutboundEmail
from mail.services import mail_queue


@pytest.mark.django_db
def test_an_attachment_is_sealed_and_sent():
    csv_text = "row,unit\nproject,NGI-secret-figure\n"
    with TestCase.captureOnCommitCallbacks(execute=False):
        row = mail_queue(subject="Usage", body="See the file.", to=["b@example.org"],
                         attachments=[("usage.csv", csv_text, "text/csv")])
    assert row is not None
    assert b"NGI-secret-figure" not in bytes(row.payload_sealed)
    payload = json.loads(unseal(bytes(row.payload_sealed), purpose="outbound-email"))
    assert payload["attachments"] == [["usage.csv", csv_text, "text/csv"]]
    with TestCase.captureOnCommitCallbacks(execute=True):
        mail_queue(subject="Usage", body="See the file.", to=["b@example.org"],
                   html="<p>See the file.</p>",
                   attachments=[("usage.csv", csv_text, "text/csv")])
    sent = mail.outbox[-1]
    assert sent.attachments == [("usage.csv", csv_text, "text/csv")]
    assert sent.alternatives and sent.alternatives[0][1] == "text/html"
    assert sent.to == ["b@example.org"] and sent.body == "See the file."


@pytest.mark.django_db
def test_an_email_without_attachments_has_none(monkeypatch):
    with TestCase.captureOnCommitCallbacks(execute=True):
        mail_queue(subject="Hello", body="Body", to=["a@example.org"])
    assert mail.outbox[-1].attachments == [] and not OutboundEmail.objects.exists()
