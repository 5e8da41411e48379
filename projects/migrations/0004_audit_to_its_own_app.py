# The audit log is now the audit app's (audit 0001 takes over the same tables).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0003_audit_scoped_keyed_chain"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="AuditChainHead"),
                migrations.DeleteModel(name="AuditEvent"),
            ],
        ),
    ]
