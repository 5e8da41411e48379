from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('transfers', '0004_upload_put_size'),
    ]

    operations = [
        migrations.AddField(
            model_name='upload',
            name='part_checksum',
            field=models.CharField(blank=True, db_default='', default='', max_length=8),
        ),
    ]
