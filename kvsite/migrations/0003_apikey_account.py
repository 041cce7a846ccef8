"""ApiKey.account: the owner of a key's items; existing keys get a slug of their name."""

from django.db import migrations, models
from django.utils.text import slugify


def accounts_from_names(apps, schema_editor):
    # A copy of kvsite.access.apikeys.account_from_name as of this migration (migrations
    # must not change meaning when app code does); the fallback uses the pk so a
    # name with nothing sluggable never lands in a shared account.
    ApiKey = apps.get_model("kvsite", "ApiKey")
    for api_key in ApiKey.objects.filter(account="").only("id", "name"):
        account = slugify(api_key.name)[:40].strip("-_") or f"key-{api_key.pk}"
        ApiKey.objects.filter(pk=api_key.pk).update(account=account)


class Migration(migrations.Migration):

    dependencies = [
        ("kvsite", "0002_auditevent"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="account",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Owner of the key's items (/kv/items); keys of one account share them. Letters, digits, - and _.",
                max_length=40,
            ),
        ),
        migrations.RunPython(accounts_from_names, migrations.RunPython.noop),
    ]
