"""Schemathesis against /api/v1/schema: no 5xx, only documented statuses, bodies as documented.

Two passes over every operation of the schema, in process (WSGI) on PostgreSQL:
unauthenticated, then as a unit's staff member with real ids (a project of theirs, a member
of it) in the path. At least 1 000 generated cases in all; any failure of the three checks
fails the test with the list of (operation, check, status).

Schemathesis is a pinned dev requirement (requirements-dev.txt); without it this module
fails to import, and so CI fails.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Examples per operation and pass; ~60 operations × 2 passes × this ≥ 1 000 cases.
EXAMPLES = int(os.environ.get("DDS_FUZZ_EXAMPLES", "12"))
MIN_CASES = 1000


def _load_schema():
    from ddsite.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/v1/schema", application)


def _record(failures: dict, operation, exc: BaseException) -> None:
    text = " ".join(str(exc).split())
    key = f"{operation.label}: {type(exc).__name__}: {text[:600]}"
    failures[key] = failures.get(key, 0) + 1


def _runner(operation, *, headers: dict, real_ids: dict, tally: dict, failures: dict):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy())
    def run(case):
        if case.path_parameters:
            case.path_parameters = {name: real_ids.get(name, value)
                                    for name, value in case.path_parameters.items()}
        tally["cases"] += 1
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            tally[response.status_code] = tally.get(response.status_code, 0) + 1
        except FailureGroup as group:
            for exc in group.exceptions:
                _record(failures, operation, exc)
        except Exception as exc:  # noqa: BLE001 - every failing case is listed below
            _record(failures, operation, exc)

    return run


def _fuzz(schema, *, login=None, **kwargs) -> None:
    for result in schema.get_all_operations():
        # A fresh login per operation: a fuzzed logout or password change ends the last.
        headers = {"Authorization": f"Bearer {login()}"} if login else {}
        _runner(result.ok(), headers=headers, **kwargs)()


def test_the_api_holds_its_schema_under_fuzzing(settings):
    from accounts.tests.helpers import api_login
    from keys.tests.helpers import keyed_user
    from projects.services import project_create, project_member_add

    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    # One client address and one account send every case: rates and lockout would turn
    # the rest of the run into 429s (which are documented, but test nothing).
    settings.DDS_THROTTLE_RATES = {scope: "1000000/min" for scope in settings.DDS_THROTTLE_RATES}
    settings.DDS_LOCKOUT_FAILURES = settings.DDS_LOCKOUT_IP_FAILURES = 10**6
    schema = _load_schema()
    tally, failures = {"cases": 0}, {}
    _fuzz(schema, real_ids={}, tally=tally, failures=failures)

    from accounts.tests.factories import UnitFactory

    unit = UnitFactory()
    staff, password, kek = keyed_user(Role.UNIT_ADMIN, unit=unit)
    keyed_user(Role.UNIT_ADMIN, unit=unit)
    member, _, _ = keyed_user(Role.RESEARCHER)
    project = project_create(unit=unit, by=staff, title="Fuzzed", force=True)
    project_member_add(project=project, by=staff, kek=kek, email=member.email)
    real = {"project_id": project.public_id, "public_id": project.public_id,
            "username": member.username}
    _fuzz(schema, login=lambda: api_login(staff, password)["access"], real_ids=real,
          tally=tally, failures=failures)

    print("fuzz cases and statuses:", tally)
    assert not failures, f"{len(failures)} kinds of failure:\n" + "\n".join(
        f"{n} × {key}" for key, n in sorted(failures.items()))
    assert tally["cases"] >= MIN_CASES, tally
