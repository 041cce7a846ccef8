"""Items accounts per key: keys that a slug of their name put in a staff user's account move out of it.

From this release a key's default account is its own (``key-<id>``) and ``user-<id>`` belongs
to staff sessions alone. Every key already records its account (migration 0003), and keeps it,
so each key goes on reading the items it wrote: keys that shared a slug (``ci`` and ``CI!``)
still share theirs, since nothing says which key wrote what. The one account that cannot stay
is ``user-<digits>``, which a key got from a name such as "User 1" and which is also staff user
1's. The keys holding it move together to ``key-<smallest id among them>`` and take the items
along: copied when that user exists (the user may have written some, and keeps them), moved
when no such user does. Nothing is deleted.
"""

import re

from django.conf import settings
from django.db import migrations

# Copies as of this migration (migrations must not change meaning when app code does).
ITEMS_BUCKET_PREFIX = "APP_items-"
USER_ACCOUNT = re.compile(r"^user-([0-9]+)$")
BATCH = 1000


def _account_free(apps, account: str) -> bool:
    ApiKey = apps.get_model("kvsite", "ApiKey")
    Bucket = apps.get_model("buckets", "Bucket")
    return (
        not ApiKey.objects.filter(account=account).exists()
        and not Bucket.objects.filter(name=ITEMS_BUCKET_PREFIX + account).exists()
    )


def _bucket_copy(apps, source, name: str) -> None:
    Bucket = apps.get_model("buckets", "Bucket")
    Entry = apps.get_model("buckets", "Entry")
    fields = [field.name for field in Bucket._meta.concrete_fields if field.name not in {"id", "name"}]
    copy = Bucket.objects.create(name=name, **{field: getattr(source, field) for field in fields})
    entry_fields = [field.name for field in Entry._meta.concrete_fields if field.name not in {"id", "bucket"}]
    batch = []
    for entry in Entry.objects.filter(bucket=source).order_by("revision").iterator(chunk_size=BATCH):
        batch.append(Entry(bucket=copy, **{field: getattr(entry, field) for field in entry_fields}))
        if len(batch) == BATCH:
            Entry.objects.bulk_create(batch)
            batch = []
    Entry.objects.bulk_create(batch)


def keys_out_of_user_accounts(apps, schema_editor):
    ApiKey = apps.get_model("kvsite", "ApiKey")
    Bucket = apps.get_model("buckets", "Bucket")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    holders: dict[str, list[int]] = {}
    for pk, account in ApiKey.objects.filter(account__startswith="user-").values_list("pk", "account"):
        if USER_ACCOUNT.match(account):
            holders.setdefault(account, []).append(pk)
    for account, pks in sorted(holders.items()):
        target = f"key-{min(pks)}"
        suffix = 1
        while not _account_free(apps, target):
            # A bucket of that name already exists (made through the bucket API): never merge into it.
            suffix += 1
            target = f"key-{min(pks)}-{suffix}"
        source = Bucket.objects.filter(name=ITEMS_BUCKET_PREFIX + account).first()
        if source is not None:
            if User.objects.filter(pk=int(USER_ACCOUNT.match(account).group(1))).exists():
                _bucket_copy(apps, source, ITEMS_BUCKET_PREFIX + target)
            else:
                Bucket.objects.filter(pk=source.pk).update(name=ITEMS_BUCKET_PREFIX + target)
        ApiKey.objects.filter(pk__in=pks).update(account=target)


class Migration(migrations.Migration):
    dependencies = [
        ("kvsite", "0003_apikey_account"),
        ("buckets", "0007_bucket_sealed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(keys_out_of_user_accounts, migrations.RunPython.noop),
    ]
