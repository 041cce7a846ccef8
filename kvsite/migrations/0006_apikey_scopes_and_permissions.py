"""Keys get scopes (kind:glob) and extra permissions; a key's bucket pattern becomes its one bucket scope.

Before, the pattern was also matched against internal names (SYS_secrets_prod, APP_<namespace>),
so it leaked into secrets and namespaces; as a bucket scope it limits the key to buckets, as
its option (--buckets) always said.
"""

from django.db import migrations, models


def patterns_to_scopes(apps, schema_editor):
    ApiKey = apps.get_model("kvsite", "ApiKey")
    for api_key in ApiKey.objects.exclude(bucket_pattern=""):
        api_key.scopes = [f"bucket:{api_key.bucket_pattern}"]
        api_key.save(update_fields=["scopes"])


class Migration(migrations.Migration):

    dependencies = [
        ('kvsite', '0005_auditevent_login'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='permissions',
            field=models.JSONField(blank=True, default=list, help_text="Permissions granted beyond the role's (the role may be 'none')."),
        ),
        migrations.AddField(
            model_name='apikey',
            name='scopes',
            field=models.JSONField(blank=True, default=list, help_text="'kind:glob' limits (kvsite/access/guard.py); empty = unrestricted."),
        ),
        migrations.AlterField(
            model_name='apikey',
            name='bucket_pattern',
            field=models.CharField(blank=True, default='', help_text='Superseded by scopes; read by the previous release only.', max_length=100),
        ),
        migrations.AlterField(
            model_name='apikey',
            name='role',
            field=models.CharField(choices=[('admin', 'Admin'), ('writer', 'Writer'), ('reader', 'Reader'), ('none', 'None')], max_length=10),
        ),
        migrations.RunPython(patterns_to_scopes, migrations.RunPython.noop),
    ]
