"""Malformed input is a 400 in the API's one error shape, never a 500 (issue 13)."""

from __future__ import annotations

import pytest

from accounts.tests.helpers import APIClient
from core.input_guard import json_depth_exceeds, names_check

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", [
    "/api/v1/projects/ngi-0001%00",
    "/api/v1/users/bob%00/deactivate",
    "/api/v1/projects?status=av%00ailable",
    "/api/v1/projects?st%00atus=x",
    "/api/v1/projects/x/files?offset=%1b",
    "/api/v1/me?x=%7f",
    "/accounts/login/?next=%00",
])
def test_control_characters_in_path_or_query_are_refused(url):
    r = APIClient().get(url)
    assert r.status_code == 400
    if url.startswith("/api/"):
        assert r.json()["code"] == "invalid" and "control character" in r.json()["detail"]


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809",
                                   "1" * 5000])
def test_integers_beyond_64_bits_are_refused(value):
    r = APIClient().get(f"/api/v1/projects/x/files?offset={value}")
    assert r.status_code == 400 and "out of range" in r.json()["detail"]


def test_the_largest_64_bit_integer_passes_the_guard():
    r = APIClient().get("/api/v1/projects/x/files?offset=9223372036854775807")
    assert r.status_code == 401  # reached authentication, not refused as input


def test_deeply_nested_json_is_refused_before_parsing():
    body = "[" * 50_000 + "]" * 50_000
    r = APIClient().post("/api/v1/auth/login", body, content_type="application/json")
    assert r.status_code == 400 and "nested deeper" in r.json()["detail"]
    shallow = '{"username": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "password": "x"}'
    r = APIClient().post("/api/v1/auth/login", shallow, content_type="application/json")
    assert r.status_code == 401  # brackets inside strings do not count


def test_json_depth_counter():
    assert not json_depth_exceeds(b'{"a": [1, {"b": [2]}]}', 4)
    assert json_depth_exceeds(b'{"a": [1, {"b": [2]}]}', 3)
    assert not json_depth_exceeds(b'["\\"[[[[", "]]"]', 1)


def test_field_errors_have_the_one_error_shape():
    r = APIClient().post("/api/v1/auth/login", {}, format="json")
    body = r.json()
    assert r.status_code == 400
    assert set(body) == {"detail", "code", "errors"} and body["code"] == "invalid"
    assert "username" in body["errors"] and "username" in body["detail"]
    r = APIClient().get("/api/v1/me")
    assert r.status_code == 401 and set(r.json()) == {"detail", "code"}


@pytest.mark.parametrize("name", ["report\u202efdp.exe", "zero\u200bwidth", "\ufeffbom",
                                  "tab\there"])
def test_format_and_control_characters_are_refused_in_names(name):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        names_check(title=name)
    assert "title" in caught.value.message_dict
    names_check(title="Ångström – 測試 ✓")  # ordinary letters and symbols are fine


def test_project_title_with_a_bidi_override_is_a_400(settings):
    from accounts.models import Role
    from accounts.tests.factories import UnitFactory
    from accounts.tests.helpers import api_login, bearer
    from keys.tests.helpers import keyed_user

    unit = UnitFactory()
    staff, password, _ = keyed_user(Role.UNIT_ADMIN, unit=unit)
    keyed_user(Role.UNIT_ADMIN, unit=unit)
    client = bearer(api_login(staff, password)["access"])
    r = client.post("/api/v1/projects", {"title": "report\u202efdp.exe", "force": True},
                    format="json")
    assert r.status_code == 400, r.content
    assert "title" in r.json()["errors"] and "U+202E" in r.json()["detail"]
