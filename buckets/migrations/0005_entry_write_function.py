"""kvsite_entry_write(): a key write as one statement on PostgreSQL (called by buckets/core/store.py).

The rules are those of buckets/core/write_plan.py, which SQLite runs in Python; the
suite runs on both databases, so the two are held to the same tests.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION kvsite_entry_write(
    p_bucket text, p_key text, p_operation text, p_value bytea, p_strict_key boolean,
    p_if_absent boolean, p_if_revision bigint, p_expires_at timestamptz, p_now timestamptz,
    OUT outcome text, OUT bucket_id bigint, OUT entry_id bigint, OUT revision bigint,
    OUT expires_at timestamptz, OUT current_revision bigint, OUT limit_value bigint
) LANGUAGE plpgsql AS $$
DECLARE
    b buckets_bucket%ROWTYPE;
    latest record;
    has_latest boolean;
    visible_op text;
    keep_rows integer;
    removed_ids bigint[];
    removed_count bigint;
    removed_bytes bigint;
    new_bytes bigint;
    new_live bigint;
    value_size integer := octet_length(p_value);
BEGIN
    -- The bucket row lock: gapless revisions, race-free conditions, exact counters.
    SELECT * INTO b FROM buckets_bucket WHERE name = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'bucket_not_found'; RETURN;
    END IF;
    bucket_id := b.id;
    IF b.key_format = 'nats' AND NOT p_strict_key THEN
        outcome := 'invalid_key'; RETURN;
    END IF;
    IF p_operation = 'put' AND value_size > b.max_value_size THEN
        outcome := 'value_too_big'; limit_value := b.max_value_size; RETURN;
    END IF;

    SELECT e.id, e.revision, e.operation, e.expires_at INTO latest FROM buckets_entry e
        WHERE e.bucket_id = b.id AND e.key = p_key ORDER BY e.revision DESC LIMIT 1;
    has_latest := FOUND;
    -- A key whose latest entry expired is gone, history included.
    IF has_latest AND (latest.expires_at IS NULL OR latest.expires_at > p_now) THEN
        visible_op := latest.operation;
        current_revision := latest.revision;
    END IF;
    IF p_if_absent AND visible_op = 'put' THEN
        outcome := 'key_exists'; RETURN;
    END IF;
    IF p_if_revision IS NOT NULL AND current_revision IS DISTINCT FROM p_if_revision THEN
        outcome := 'revision_mismatch'; RETURN;
    END IF;
    IF p_operation = 'delete' AND visible_op IS DISTINCT FROM 'put' THEN
        outcome := 'key_not_found'; RETURN;
    END IF;
    IF p_operation = 'purge' AND (visible_op IS NULL OR visible_op NOT IN ('put', 'delete')) THEN
        outcome := 'key_not_found'; RETURN;
    END IF;

    keep_rows := CASE WHEN p_operation = 'purge' OR visible_op IS NULL THEN 0 ELSE b.history - 1 END;
    SELECT coalesce(array_agg(k.id), '{}'), count(*), coalesce(sum(k.size), 0)
        INTO removed_ids, removed_count, removed_bytes
        FROM (SELECT e.id, e.size FROM buckets_entry e WHERE e.bucket_id = b.id AND e.key = p_key
              ORDER BY e.revision DESC OFFSET keep_rows) k;
    new_bytes := b.bytes_total + value_size - removed_bytes;
    IF p_operation = 'put' AND b.max_bytes <> -1 AND new_bytes > b.max_bytes THEN
        outcome := 'bucket_full'; limit_value := b.max_bytes; RETURN;
    END IF;
    new_live := b.live_keys + (p_operation = 'put')::int - (has_latest AND latest.operation = 'put')::int;
    IF p_operation = 'put' AND b.max_keys <> -1 AND new_live > b.max_keys THEN
        outcome := 'key_limit'; limit_value := b.max_keys; RETURN;
    END IF;

    DELETE FROM buckets_entry e WHERE e.id = ANY(removed_ids);
    IF has_latest AND NOT latest.id = ANY(removed_ids) THEN
        UPDATE buckets_entry e SET is_latest = false WHERE e.id = latest.id;
    END IF;
    -- LEAST ignores NULLs: the earlier of the entry's own expiry and the bucket TTL.
    expires_at := LEAST(
        p_expires_at, CASE WHEN b.ttl_seconds > 0 THEN p_now + make_interval(secs => b.ttl_seconds) END
    );
    revision := b.last_revision + 1;
    INSERT INTO buckets_entry (bucket_id, key, revision, operation, value, size, created_at, expires_at, is_latest)
        VALUES (b.id, p_key, revision, p_operation, p_value, value_size, p_now, expires_at, true)
        RETURNING id INTO entry_id;
    UPDATE buckets_bucket SET last_revision = revision, values_count = b.values_count + 1 - removed_count,
        bytes_total = new_bytes, live_keys = new_live WHERE id = b.id;
    outcome := 'ok';
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS kvsite_entry_write(text, text, text, bytea, boolean, boolean, bigint, timestamptz, timestamptz)"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("buckets", "0004_latest_marker_index")]

    operations = [migrations.RunPython(create, drop)]
