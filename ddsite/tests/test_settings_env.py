"""Settings read from the environment: a bad value is refused with the variable's name,
and the production guard lists every problem at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings


def _check(tmp_path, **env) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR,
                          env={**keep, "DJANGO_SETTINGS_MODULE": "ddsite.settings",
                               "DDS_VAR_DIR": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name, value", [("DDS_KDF_MEMORY_KIB", "lots-of-secret"),
                                         ("DDS_UPLOAD_PART_URL_TTL", "15min")])
def test_a_number_that_is_not_one_names_the_variable_not_the_value(tmp_path, name, value):
    out = _check(tmp_path, DEBUG="1", **{name: value})
    assert out.returncode != 0
    assert f"ImproperlyConfigured: {name}: its value cannot be read as int" in out.stderr
    assert value not in out.stderr


@pytest.mark.parametrize("value", ["yes-please", "enabled", "2"])
def test_a_boolean_that_is_not_one_is_refused_not_read_as_false(tmp_path, value):
    out = _check(tmp_path, DEBUG=value)
    assert out.returncode != 0
    assert f"DEBUG={value!r} is not a boolean" in out.stderr


@pytest.mark.parametrize("value", ["1", "true", "Yes", "on", "0", "False", "no", "off", ""])
def test_the_usual_words_are_booleans(tmp_path, value):
    out = _check(tmp_path, DEBUG="1", DDS_ALLOW_EMBEDDED=value)
    assert out.returncode == 0, out.stderr


def test_the_production_guard_lists_every_problem_at_once(tmp_path):
    out = _check(tmp_path, DEBUG="0", SECRET_KEY="short", ALLOWED_HOSTS="*")
    assert out.returncode != 0
    assert "4 problems with these settings (DEBUG is off):" in out.stderr
    for words in ("SECRET_KEY is too short", "ALLOWED_HOSTS contains a wildcard",
                  "DATABASE_URL, EMAIL_URL, CELERY_BROKER_URL, REDIS_URL not set",
                  "DDS_TRUSTED_PROXIES is empty"):
        assert words in out.stderr
