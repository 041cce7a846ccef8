"""kv_export / kv_import: an exact round trip, and refusal to overwrite."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from buckets.core import store
from buckets.core.names import SYS_CONFIG_PREFIX, app_bucket
from buckets.models import Bucket, Entry

pytestmark = pytest.mark.django_db

BUCKET_COLUMNS = (
    "name", "description", "ttl_seconds", "max_value_size", "max_bytes", "history", "max_keys", "key_format",
    "created_at", "last_revision", "values_count", "bytes_total", "live_keys",
)  # fmt: skip
ENTRY_COLUMNS = (
    "bucket__name",
    "key",
    "revision",
    "operation",
    "value",
    "size",
    "created_at",
    "expires_at",
    "is_latest",
)


def snapshot() -> tuple[list, list]:
    buckets = list(Bucket.objects.order_by("name").values_list(*BUCKET_COLUMNS))
    entries = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        for row in Entry.objects.order_by("bucket__name", "revision").values_list(*ENTRY_COLUMNS)
    ]
    return buckets, entries


@pytest.fixture
def populated(make_bucket) -> None:
    make_bucket("settings", history=3, description="app settings", max_bytes=10_000)
    settings_bucket = app_bucket("settings")
    for index in range(5):
        store.entry_put(bucket=settings_bucket, key="theme", value=f"v{index}".encode())
    store.entry_put(bucket=settings_bucket, key="flags", value=bytes(range(256)))
    store.entry_delete(bucket=settings_bucket, key="flags")
    store.entry_put(bucket=settings_bucket, key="gone", value=b"x")
    store.entry_purge(bucket=settings_bucket, key="gone")
    make_bucket("items-acme", key_format="text", max_keys=10, ttl_seconds=3600)
    store.entry_put(
        bucket=app_bucket("items-acme"), key="ünïcode key", value=b'{"a":1}',
        expires_at=store.clock.now() + timedelta(seconds=60),
    )  # fmt: skip
    store.bucket_create(name=SYS_CONFIG_PREFIX + "default", history=20)
    store.entry_put(bucket=SYS_CONFIG_PREFIX + "default", key="flags", value=b'{"beta":true}')


def export() -> str:
    out = io.StringIO()
    call_command("kv_export", stdout=out)
    return out.getvalue()


def import_(path, *args: str) -> str:
    out = io.StringIO()
    call_command("kv_import", str(path), *args, stdout=out)
    return out.getvalue()


def test_round_trip_restores_everything_exactly(populated, tmp_path) -> None:
    before = snapshot()
    dump = tmp_path / "dump.jsonl"
    dump.write_text(export())
    for bucket in Bucket.objects.all():
        store.bucket_delete(name=bucket.name)

    report = import_(dump)

    assert snapshot() == before
    assert "APP_settings: 6 entries restored" in report
    # The restored bucket carries on where it was.
    assert store.entry_put(bucket=app_bucket("settings"), key="theme", value=b"next").revision == 10


def test_export_of_named_buckets_only(populated) -> None:
    out = io.StringIO()
    call_command("kv_export", "APP_settings", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith('{"type":"bucket"') and '"name":"APP_settings"' in lines[0]
    assert sum('"type":"bucket"' in line for line in lines) == 1
    with pytest.raises(CommandError):
        call_command("kv_export", "APP_nope", stdout=io.StringIO())


def test_import_refuses_a_non_empty_bucket_unless_replace(populated, tmp_path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_text(export())
    store.entry_put(bucket=app_bucket("settings"), key="new", value=b"1")

    with pytest.raises(CommandError, match="already exists"):
        import_(dump)
    assert store.entry_get(bucket=app_bucket("settings"), key="new")

    import_(dump, "--replace")
    assert store.key_list(bucket=app_bucket("settings")).keys == ["theme"]


@pytest.mark.parametrize("content", ["not json\n", '{"type":"entry","key":"k"}\n', '{"type":"other"}\n'])
def test_malformed_files_are_refused(db, tmp_path, content: str) -> None:
    dump = tmp_path / "bad.jsonl"
    dump.write_text(content)

    with pytest.raises(CommandError):
        import_(dump)
    assert not Bucket.objects.exists()


HEADER = (
    '{"type":"bucket","format":1,"name":"APP_x","created_at":%s,"description":"","ttl_seconds":0,'
    '"max_value_size":1024,"max_bytes":-1,"history":1,"max_keys":-1,"key_format":"nats","last_revision":1}\n'
)
ENTRY = '{"type":"entry","key":"k","revision":1,"operation":"put","value":"eA==","created_at":%s}\n'


@pytest.mark.parametrize(
    "content",
    [HEADER % "null" + ENTRY % '"2026-01-01T00:00:00Z"', HEADER % '"2026-01-01T00:00:00Z"' + ENTRY % "null"],
    ids=["bucket", "entry"],
)
def test_a_line_without_its_creation_time_is_refused(db, tmp_path, content: str) -> None:
    # Given an export whose bucket header or entry has "created_at": null (a column that cannot be null)
    dump = tmp_path / "bad.jsonl"
    dump.write_text(content)

    # When it is imported, then the command refuses it by name instead of failing on the database
    with pytest.raises(CommandError, match="created_at"):
        import_(dump)
    assert not Bucket.objects.exists()
