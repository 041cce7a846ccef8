"""Buckets know whether they hold sealed values, so rotation walks them instead of matching a name."""

from django.db import migrations, models


def mark_sealed(apps, schema_editor):
    # Until now every sealed bucket (secret environments, secret namespaces) was named SYS_secrets_*.
    Bucket = apps.get_model("buckets", "Bucket")
    Bucket.objects.filter(name__startswith="SYS_secrets_").update(sealed=True)


class Migration(migrations.Migration):
    dependencies = [("buckets", "0006_latest_keys_covering_index")]

    operations = [
        migrations.AddField(
            model_name="bucket", name="sealed", field=models.BooleanField(default=False, db_default=False)
        ),
        migrations.RunPython(mark_sealed, migrations.RunPython.noop),
    ]
