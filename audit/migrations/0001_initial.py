# The audit log moved from projects to its own app: the tables stay
# (projects_auditevent, projects_auditchainhead), only Django's model state moves
# (projects 0004 removes it there).
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("projects", "0003_audit_scoped_keyed_chain"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AuditChainHead',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(max_length=64, unique=True)),
                        ('count', models.BigIntegerField(default=0)),
                        ('last_hash', models.CharField(max_length=64)),
                        ('mac', models.CharField(blank=True, max_length=64)),
                    ],
                    options={
                        'db_table': 'projects_auditchainhead',
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_username', models.CharField(blank=True, max_length=150)),
                        ('action', models.CharField(max_length=64)),
                        ('project_public_id', models.CharField(blank=True, max_length=32)),
                        ('target', models.CharField(blank=True, max_length=255)),
                        ('ip', models.GenericIPAddressField(blank=True, null=True)),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('details', models.JSONField(blank=True, default=dict)),
                        ('scope', models.CharField(default='system', max_length=64)),
                        ('seq', models.BigIntegerField(default=0)),
                        ('prev_hash', models.CharField(max_length=64)),
                        ('hash', models.CharField(max_length=64, unique=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='projects.project')),
                    ],
                    options={
                        'db_table': 'projects_auditevent',
                        'ordering': ['id'],
                        'indexes': [models.Index(fields=['project_public_id', 'at'], name='audit_project_idx'), models.Index(fields=['action', 'at'], name='audit_action_idx')],
                        'constraints': [models.UniqueConstraint(fields=('scope', 'seq'), name='audit_scope_seq_unique')],
                    },
                ),
            ],
        ),
    ]
