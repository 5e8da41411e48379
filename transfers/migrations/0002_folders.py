import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0001_initial"),
        ("transfers", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Folder",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("path", models.CharField(max_length=1024)),
                ("parent", models.CharField(blank=True, max_length=1024)),
                ("name", models.CharField(blank=True, max_length=255)),
                ("file_count", models.PositiveBigIntegerField(default=0)),
                ("size_original", models.PositiveBigIntegerField(default=0)),
                ("size_stored", models.PositiveBigIntegerField(default=0)),
                ("project", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="folders", to="projects.project")),
            ],
            options={
                "indexes": [models.Index(fields=["project", "parent", "name"], name="folder_parent_idx")],
                "constraints": [models.UniqueConstraint(fields=("project", "path"), name="folder_path_unique")],
            },
        ),
    ]
