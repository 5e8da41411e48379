# The outbox moved from accounts to its own app: the table stays (accounts_outboundemail),
# only Django's model state moves (accounts 0005 removes it there).
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("accounts", "0004_second_factor_devices_sealed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="OutboundEmail",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("payload_sealed", models.BinaryField(editable=False)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("created_at", models.DateTimeField(
                            default=django.utils.timezone.now, editable=False)),
                        ("last_error", models.CharField(blank=True, default="",
                                                        max_length=200)),
                    ],
                    options={"ordering": ["created_at"],
                             "db_table": "accounts_outboundemail"},
                ),
            ],
        ),
    ]
