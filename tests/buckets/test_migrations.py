"""Data migrations, run forwards on the test database from the migration before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from buckets.models import Bucket

BEFORE_SEALED = [("buckets", "0006_latest_keys_covering_index")]
SEALED = [("buckets", "0007_bucket_sealed")]


def migrate(targets: list[tuple[str, str]] | None = None):
    """Migrate to ``targets`` (default: the latest migrations); the apps registry as of there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_secret_buckets_are_marked_sealed() -> None:
    """Given buckets made before buckets knew they were sealed, when migrating, then exactly the
    secret environments and secret namespaces (all named SYS_secrets_*) become sealed."""
    old = migrate(BEFORE_SEALED)
    Bucket = old.get_model("buckets", "Bucket")
    for name in ("SYS_secrets_prod", "SYS_secrets_.ns.0123abcd", "SYS_config_prod", "APP_orders"):
        Bucket.objects.create(name=name, max_value_size=1024, created_at="2026-01-01T00:00:00Z")
    try:
        new = migrate(SEALED)
        sealed = dict(new.get_model("buckets", "Bucket").objects.values_list("name", "sealed"))
    finally:
        migrate()  # the tests after this one expect the latest schema

    assert sealed == {
        "SYS_secrets_prod": True,
        "SYS_secrets_.ns.0123abcd": True,
        "SYS_config_prod": False,
        "APP_orders": False,
    }


@pytest.mark.django_db
def test_a_previous_release_still_creates_buckets_after_the_migration() -> None:
    """During a rolling upgrade the previous release inserts buckets without the new column:
    the database's own default fills it in (a Python-only default would fail NOT NULL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO buckets_bucket (name, description, ttl_seconds, max_value_size, max_bytes, history, max_keys,"
            " key_format, created_at, last_revision, values_count, bytes_total, live_keys)"
            " VALUES ('APP_old_release', '', 0, 1024, -1, 1, -1, 'nats', %s, 0, 0, 0, 0)",
            ["2026-01-01T00:00:00+00:00"],
        )

    assert Bucket.objects.get(name="APP_old_release").sealed is False
