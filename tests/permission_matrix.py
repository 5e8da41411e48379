"""The permission matrix: every API URL × every actor → allowed or refused.

Every URL pattern under /api/v1/ (read from the URL conf) must have exactly one row, or
``tests/test_permission_matrix.py`` fails and lists the missing names. Rows live per app
in ``<app>/tests/permission_rows.py`` (or any ``permission_rows_<topic>.py`` beside it),
as a module-level dict ``ROWS``::

    from tests.permission_matrix import ALLOWED, Row, expect

    ROWS = {
        # URL name (as for reverse()) → Row
        "me": Row("get", expect=expect(ALLOWED, anonymous=401, pending=401)),
        "user-deactivate": Row(
            "post",
            kwargs=lambda w: {"username": w.target_staff.username},
            body=None,
            expect=expect(404, anonymous=401, pending=401, personnel=403,
                          unit_admin=ALLOWED, super_admin=ALLOWED)),
    }

Row fields:

- ``method``: "get", "post", "put", "patch" or "delete".
- ``kwargs``: URL arguments, a dict or ``callable(world) -> dict``.
- ``body``: JSON body, a dict or ``callable(world) -> dict`` (None: no body).
- ``expect``: ``{actor: ALLOWED | 401 | 403 | 404}`` for every actor in ``ACTORS``; build
  it with ``expect(default, **overrides)``. ``ALLOWED`` means the caller got past
  authentication and authorisation: any status except 401/403/404 and below 500 (a 400
  for a deliberately incomplete body still counts as allowed).

Actors (``ACTORS``): ``anonymous`` (no token), ``pending`` (a researcher who passed the
password step but not the second factor), ``researcher`` (member of ``world.project``),
``owner`` (its project owner), ``personnel`` and ``unit_admin`` (staff of the project's
unit A), ``super_admin``, and ``other_unit_staff`` (an admin of unit B).

The world (:class:`World`) is built once per test: units A and B, ``project`` in unit A
with real keys held by its staff and members, and spare users to act on
(``target_staff``: personnel of unit A; ``target_researcher``: a member of the project).
Each request runs in a savepoint that is rolled back afterwards, so builders may create
objects (an upload, a file) and a request's effects (a delete, a logout) never reach the
next request. ``world.extra`` is a dict apps may fill in their builders.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

ALLOWED = "allowed"
REFUSED = (401, 403, 404)
ACTORS = ("anonymous", "pending", "researcher", "owner", "personnel", "unit_admin",
          "super_admin", "other_unit_staff")
API_PREFIX = "api/v1/"


@dataclass
class Row:
    method: str
    kwargs: dict | Callable[[Any], dict] | None = None
    body: dict | Callable[[Any], dict] | None = None
    expect: dict[str, Any] = field(default_factory=dict)


def expect(default, **overrides) -> dict[str, Any]:
    unknown = set(overrides) - set(ACTORS)
    if unknown:
        raise ValueError(f"unknown actors: {sorted(unknown)}")
    return {actor: overrides.get(actor, default) for actor in ACTORS}


def everyone(value=ALLOWED) -> dict[str, Any]:
    return expect(value)


def signed_in(default=ALLOWED, **overrides) -> dict[str, Any]:
    """Anonymous and pending callers get 401; the rest ``default`` unless overridden."""
    return expect(default, **{"anonymous": 401, "pending": 401, **overrides})


# --------------------------------------------------------------------------- URL conf


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p.name


def api_urls() -> dict[str | None, str]:
    """URL name → route of every pattern under /api/v1/."""
    found: dict[str | None, str] = {}
    for route, name in _walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIX):
            found[name] = route
    return found


def all_rows() -> dict[str, Row]:
    """Every app's ROWS merged; a name defined twice is an error."""
    rows: dict[str, Row] = {}
    base = str(settings.BASE_DIR)
    for config in apps.get_app_configs():
        if not str(config.path).startswith(base):
            continue
        tests_dir = Path(config.path) / "tests"
        for path in sorted(tests_dir.glob("permission_rows*.py")):
            module = importlib.import_module(f"{config.name}.tests.{path.stem}")
            for name, row in module.ROWS.items():
                if name in rows:
                    raise AssertionError(f"two permission rows for {name!r}")
                rows[name] = row
    return rows


# --------------------------------------------------------------------------- world


@dataclass
class World:
    unit_a: Any
    unit_b: Any
    project: Any
    password: str
    users: dict[str, Any]
    tokens: dict[str, dict]
    pending_token: str
    pending_code: str
    target_staff: Any
    target_researcher: Any
    extra: dict = field(default_factory=dict)

    def __getattr__(self, name):
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)


def _login_start(user, password):
    """The password step, with its emailed code (read from the test outbox)."""
    from django.test import TestCase

    from accounts.models import AuthSessionKind
    from accounts.services import login_start
    from accounts.tests.helpers import last_code

    with TestCase.captureOnCommitCallbacks(execute=True):
        challenge = login_start(username=user.username, password=password,
                                kind=AuthSessionKind.API)
    return challenge, last_code(user.email)


def _login(user, password) -> dict:
    from accounts.services import login_verify
    from accounts.sessions import api_tokens_issue, session_key_for_client

    challenge, code = _login_start(user, password)
    session = login_verify(session=challenge.session, code=code)
    carried = session_key_for_client(session=session, session_key=challenge.session_key)
    issued = api_tokens_issue(session=session, carried_key=carried)
    return {"access": issued.access, "refresh": issued.refresh}


def build_world() -> World:
    from accounts.models import Role
    from accounts.services import unit_create, user_create
    from accounts.sessions import pending_token_issue
    from projects.services import project_create

    password = "Pw-" + secrets.token_urlsafe(12)
    unit_a = unit_create(name="Matrix A", display_name="Matrix A", contact_email="a@example.org",
                         internal_ref="mxa")
    unit_b = unit_create(name="Matrix B", display_name="Matrix B", contact_email="b@example.org",
                         internal_ref="mxb")

    def make(username, role, unit=None):
        return user_create(username=username, email=f"{username}@example.org", name=username,
                           password=password, role=role, unit=unit)

    users = {
        "researcher": make("mx-researcher", Role.RESEARCHER),
        "owner": make("mx-owner", Role.RESEARCHER),
        "personnel": make("mx-personnel", Role.UNIT_PERSONNEL, unit_a),
        "unit_admin": make("mx-unitadmin", Role.UNIT_ADMIN, unit_a),
        "super_admin": make("mx-superadmin", Role.SUPER_ADMIN),
        "other_unit_staff": make("mx-otheradmin", Role.UNIT_ADMIN, unit_b),
    }
    admin2 = make("mx-unitadmin2", Role.UNIT_ADMIN, unit_a)
    make("mx-otheradmin2", Role.UNIT_ADMIN, unit_b)
    target_staff = make("mx-target-staff", Role.UNIT_PERSONNEL, unit_a)
    target_researcher = make("mx-target-researcher", Role.RESEARCHER)
    project = project_create(unit=unit_a, by=users["unit_admin"], title="Matrix project",
                             force=True, researchers=[users["researcher"], target_researcher],
                             owners=[users["owner"]])
    users["admin2"] = admin2
    tokens = {actor: _login(users[actor], password)
              for actor in ACTORS if actor not in ("anonymous", "pending")}
    challenge, pending_code = _login_start(users["researcher"], password)
    pending_token = pending_token_issue(session=challenge.session,
                                        session_key=challenge.session_key)
    return World(unit_a=unit_a, unit_b=unit_b, project=project, password=password,
                 users=users, tokens=tokens, pending_token=pending_token,
                 pending_code=pending_code, target_staff=target_staff,
                 target_researcher=target_researcher)


def auth_header(world: World, actor: str) -> dict:
    if actor == "anonymous":
        return {}
    token = world.pending_token if actor == "pending" else world.tokens[actor]["access"]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def outcome_ok(expected, status_code: int) -> bool:
    if expected == ALLOWED:
        return status_code not in REFUSED and status_code < 500
    return status_code == expected
