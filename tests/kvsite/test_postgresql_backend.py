"""The PostgreSQL backend's health check: free for a healthy connection, and still catching a dead one."""

import select

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend"),
    pytest.mark.django_db(transaction=True),
]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def start_of_next_request() -> None:
    """What Django does with a persistent connection when a request starts (request_started)."""
    connection.close_if_unusable_or_obsolete()


def terminate(pid: int) -> None:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def wait_until_told(timeout: float = 5) -> None:
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    if not poller.poll(timeout * 1000):
        pytest.fail("the server never told the idle connection it was ended")


def test_a_healthy_reused_connection_is_not_pinged_before_the_request_query(monkeypatch) -> None:
    first = backend_pid()
    start_of_next_request()
    pings: list[bool] = []
    monkeypatch.setattr(connection, "is_usable", lambda: pings.append(True) or True)

    assert backend_pid() == first
    assert pings == []


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it() -> None:
    ended = backend_pid()
    terminate(ended)
    wait_until_told()

    start_of_next_request()

    assert backend_pid() != ended
