"""The user agreement: the version each account is held to, and the acceptances.

Accounts that exist before this migration count as having accepted version "1" (the
column is added with that value), whatever DDS_USER_AGREEMENT_VERSION says: if the site
already runs a later version, they are asked to accept it at their next portal visit.
New accounts default to the version in force (accounts.models.user_agreement_version).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import accounts.models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_unit_billing_quota_warned"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="agreement_version",
            field=models.CharField(default="1", editable=False, max_length=32),
        ),
        migrations.AlterField(
            model_name="user",
            name="agreement_version",
            field=models.CharField(default=accounts.models.user_agreement_version,
                                   editable=False, max_length=32),
        ),
        migrations.CreateModel(
            name="AgreementAcceptance",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("version", models.CharField(max_length=32)),
                ("accepted_at", models.DateTimeField(default=django.utils.timezone.now,
                                                     editable=False)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="agreement_acceptances",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["-accepted_at"],
                "constraints": [models.UniqueConstraint(
                    fields=("user", "version"),
                    name="agreement_accepted_once_per_version")],
            },
        ),
    ]
