"""PostgreSQL: the index of latest entries also carries ``operation`` and ``expires_at``.

A key listing asks, for every key in its range, whether the latest entry is a live
put; with those two columns in the index PostgreSQL answers from the index alone
(an index-only scan) instead of visiting one table page per key: 105 buffers for
100 keys of a 1,000,000-key bucket before, 6 after.

It is the same unique index Django knows as the ``entry_one_latest_per_key``
constraint, rebuilt with ``INCLUDE``: Django cannot declare it (a ``UniqueConstraint``
with ``include`` is not created at all on SQLite, which would lose the uniqueness
there). Built ``CONCURRENTLY`` under a temporary name and swapped in, so that writes
go on while a large table is indexed; a leftover of an interrupted build is dropped
first. A later migration that changes the constraint rebuilds it without the
included columns: listings stay correct, only slower.
"""

from django.db import migrations

TABLE = "buckets_entry"
NAME = "entry_one_latest_per_key"
BUILDING = "entry_one_latest_per_key_building"


def _swap_in(schema_editor, *, include: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{BUILDING}"')
    schema_editor.execute(
        f'CREATE UNIQUE INDEX CONCURRENTLY "{BUILDING}" ON "{TABLE}" ("bucket_id", "key") {include} WHERE "is_latest"'
    )
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"')
    schema_editor.execute(f'ALTER INDEX "{BUILDING}" RENAME TO "{NAME}"')


def cover(apps, schema_editor) -> None:
    _swap_in(schema_editor, include='INCLUDE ("operation", "expires_at")')


def uncover(apps, schema_editor) -> None:
    _swap_in(schema_editor, include="")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("buckets", "0005_entry_write_function"),
    ]

    operations = [migrations.RunPython(cover, uncover, elidable=False)]
