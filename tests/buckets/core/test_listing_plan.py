"""On PostgreSQL a key listing reads the index of latest entries alone (migration 0006)."""

import pytest
from django.db import connection

from buckets.core import store
from buckets.core.names import app_bucket

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans"),
    pytest.mark.django_db(transaction=True),  # VACUUM cannot run in the test's transaction
]

BUCKET = app_bucket("listing")


@pytest.fixture
def listing(make_bucket) -> str:
    make_bucket("listing", history=3)
    for tenant in range(5):
        for user in range(20):
            store.entry_put(bucket=BUCKET, key=f"tenant.{tenant}.user.{user}", value=b"v")
    store.entry_put(bucket=BUCKET, key="tenant.1.user.1", value=b"again")
    store.entry_delete(bucket=BUCKET, key="tenant.1.user.2")
    with connection.cursor() as cursor:
        # What autovacuum does to a table: the visibility map that index-only scans rely on.
        cursor.execute("VACUUM ANALYZE buckets_entry")
    return BUCKET


def statement_of(call) -> tuple[str, list]:
    """The SQL and parameters of the listing query ``call`` runs."""
    executed: list[tuple[str, list]] = []

    def capture(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        call()
    return next((sql, params) for sql, params in executed if 'ORDER BY e."key"' in sql)


def plan_of(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        # A table of a hundred rows is read whole otherwise; the question is which index serves it.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")


@pytest.mark.parametrize(
    "options",
    [
        {"pattern": "tenant.1.user.*"},
        {"pattern": "tenant.1.>"},
        {"limit": 10, "cursor": store.encode_cursor("tenant.2.user.5")},
        {},
    ],
    ids=["wildcard", "tail", "page", "all"],
)
def test_a_listing_is_answered_from_the_index_of_latest_entries_alone(listing: str, options: dict) -> None:
    plan = plan_of(*statement_of(lambda: store.key_list(bucket=listing, **options)))

    assert "Index Only Scan using entry_one_latest_per_key" in plan, plan
    assert "Heap Fetches: 0" in plan, plan


def test_the_covering_index_still_allows_one_latest_entry_per_key(listing: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'entry_one_latest_per_key'")
        (definition,) = cursor.fetchone()

    assert definition.startswith("CREATE UNIQUE INDEX")
    assert "(bucket_id, key) INCLUDE (operation, expires_at) WHERE is_latest" in definition
