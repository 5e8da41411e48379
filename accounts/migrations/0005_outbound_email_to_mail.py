# The outbox is now the mail app's (mail 0001 takes over the same table).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_second_factor_devices_sealed"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="OutboundEmail")],
        ),
    ]
