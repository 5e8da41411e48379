"""Every API URL against every actor (see tests/permission_matrix.py for the format)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from tests.permission_matrix import ACTORS, all_rows, api_urls, auth_header, build_world, outcome_ok

pytestmark = pytest.mark.django_db


def test_every_api_url_has_a_row():
    missing = sorted(str(n) for n in set(api_urls()) - set(all_rows()))
    assert not missing, ("API URLs without a permission row (add them to "
                         f"<app>/tests/permission_rows.py): {missing}")


def test_every_api_url_has_a_name():
    unnamed = [route for name, route in api_urls().items() if not name]
    assert not unnamed, f"API URL patterns without a name: {unnamed}"


def test_no_row_for_a_url_that_does_not_exist():
    stale = sorted(set(all_rows()) - set(api_urls()))
    assert not stale, f"permission rows for unknown URL names: {stale}"


def test_every_row_covers_every_actor():
    incomplete = {name: sorted(set(ACTORS) - set(row.expect))
                  for name, row in all_rows().items() if set(row.expect) != set(ACTORS)}
    assert not incomplete, f"rows missing actors: {incomplete}"


def _call(world, name, row, actor):
    with transaction.atomic():
        kwargs = row.kwargs(world) if callable(row.kwargs) else (row.kwargs or {})
        body = row.body(world) if callable(row.body) else row.body
        client = APIClient()
        method = getattr(client, row.method.lower())
        extra = {"format": "json"} if body is not None else {}
        response = method(reverse(name, kwargs=kwargs), body, **extra,
                          **auth_header(world, actor))
        transaction.set_rollback(True)
    return response.status_code


def test_permission_matrix():
    world = build_world()
    failures = []
    for name, row in sorted(all_rows().items()):
        for actor in ACTORS:
            status_code = _call(world, name, row, actor)
            expected = row.expect[actor]
            if not outcome_ok(expected, status_code):
                failures.append(f"{name} [{row.method.upper()}] as {actor}: expected "
                                f"{expected}, got {status_code}")
    assert not failures, "permission matrix mismatches:\n" + "\n".join(failures)
