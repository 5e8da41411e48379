"""Migrations stay usable by the previous release's code during a roll-out.

The migrate hook runs before the web pods roll (docs/deploy.md), so for a while pods of
the previous release insert rows into the migrated tables. A NOT NULL column they do not
know needs a database default (``db_default``): with only a Python ``default`` Django
adds the column with a temporary default and drops it, and every insert of an old pod
then fails (500)."""

from __future__ import annotations

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField
from django.db.models import NOT_PROVIDED

OURS = {"accounts", "audit", "core", "jobs", "keys", "mail", "projects", "reports",
        "transfers", "portal", "ddsite"}

#: Columns added before this rule. projects 0002 shipped in 0.1.0; the audit chain's
#: columns (projects 0003) cannot take a default that keeps the chain valid: an event an
#: old pod writes is refused (its transaction rolled back) until the pod is replaced.
EXEMPT = {
    ("projects", "0002_project_rerelease_count_project_storage_purged_at", "rerelease_count"),
    ("projects", "0003_audit_scoped_keyed_chain", "scope"),
    ("projects", "0003_audit_scoped_keyed_chain", "count"),
    ("projects", "0003_audit_scoped_keyed_chain", "mac"),
    ("projects", "0003_audit_scoped_keyed_chain", "seq"),
}


def test_added_not_null_columns_have_a_database_default():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    state = loader.project_state()
    missing = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in OURS:
            continue
        for op in migration.operations:
            if not isinstance(op, AddField) or op.field.null or op.field.many_to_many:
                continue
            if (app, name, op.name) in EXEMPT:
                continue
            # The field as it is now (a later AlterField may have given it the default).
            model = state.models[(app, op.model_name_lower)]
            field = model.fields[op.name]
            if field.db_default is NOT_PROVIDED:
                missing.append(f"{app}.{name}: {op.model_name}.{op.name}")
    assert not missing, f"NOT NULL columns without db_default: {missing}"
