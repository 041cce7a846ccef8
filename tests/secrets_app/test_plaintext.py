"""A secret's plaintext reaches the one response that reveals it, and nothing else."""

import base64
import logging
import subprocess
from pathlib import Path

import pytest
from django.db import connection, connections

from buckets.core import events, store
from buckets.models import Entry
from tests.live_server import manage
from tests.secrets_app.conftest import flip_last_byte

from .conftest import PLAINTEXT

SECOND = "correct-horse-SECOND-CANARY-41b2"


def database_dump() -> bytes:
    """Every row of every table, as bytes (a stand-in for pg_dump / .dump)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608  (introspected names)
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def database_files() -> bytes:
    """The SQLite database file and its WAL, byte for byte, read by a child process.

    Not opened here: closing any descriptor of the database file drops every POSIX lock this
    process holds on it, SQLite's own included. A server closing its connection then takes
    itself for the last one, checkpoints and deletes the WAL, and this process's later commits
    go to the unlinked file, seen by no other process (a rotation test failed that way, one
    full-suite run in five).
    """
    if connection.vendor != "sqlite":
        return b""
    name = Path(connection.settings_dict["NAME"])
    paths = [str(path) for path in (name, Path(f"{name}-wal")) if path.exists()]
    return subprocess.run(["cat", *paths], capture_output=True, check=True).stdout


@pytest.mark.django_db(transaction=True)
def test_plaintext_is_absent_from_database_logs_and_events(env_client, caplog, monkeypatch) -> None:
    published: list[dict] = []
    monkeypatch.setattr(events, "publish", lambda group, event: published.append(event))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    # Log every SQL statement with its parameters.
    monkeypatch.setattr(connections["default"], "force_debug_cursor", True)
    client = env_client()

    client.post("/api/v1/secrets", {"name": "db/password", "value": PLAINTEXT}, format="json")
    client.put("/api/v1/secrets/db/password", {"value": SECOND}, format="json")
    client.patch("/api/v1/secrets/db/password", {"name": "db/pw", "description": "d"}, format="json")
    listing = client.get("/api/v1/secrets")
    info = client.get("/api/v1/secrets/db/pw")
    revealed = client.get("/api/v1/secrets/db/pw/value")
    forbidden = env_client("reader").get("/api/v1/secrets/db/pw/value")
    entry = Entry.objects.filter(key="db/pw").latest("revision")
    Entry.objects.filter(pk=entry.pk).update(value=flip_last_byte(bytes(entry.value)))
    tampered = client.get("/api/v1/secrets/db/pw/value")

    assert revealed.json()["value"] == SECOND
    assert "django.db.backends" in caplog.text  # the SQL really was logged
    assert b"db/pw" in database_dump()  # the dump really holds the rows
    assert connection.vendor != "sqlite" or b"db/pw" in database_files()
    assert published and all(event["value"] == "" for event in published)
    for secret in (PLAINTEXT, SECOND):
        raw = secret.encode()
        encoded = base64.b64encode(raw)
        assert secret not in caplog.text
        assert encoded.decode() not in caplog.text
        assert secret not in repr(published)
        assert raw not in database_dump() and encoded not in database_dump()
        assert raw not in database_files()
        for response in (listing, info, forbidden, tampered):
            assert secret not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_reading_the_database_files_keeps_this_process_commits_visible() -> None:
    """Given the files read for the check above, when another process opens and closes the database
    and this process then commits, then a third process sees the commit (it did not while the
    files were opened here: this process had lost its locks and wrote to a deleted WAL)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's files")
    count = "from buckets.models import Bucket; print(Bucket.objects.filter(name='APP_after').count())"

    store.bucket_create(name="APP_before")  # this process has the database open
    database_files()
    manage("shell", "-c", count)
    store.bucket_create(name="APP_after")

    assert manage("shell", "-c", count).split()[-1] == "1"
