"""The PostgreSQL backend's health check: free for a healthy connection, and still catching a dead one."""

import select
import time

import httpx
import psycopg
import pytest
from django.db import connection

from kvsite.access.apikeys import apikey_create
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture)

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


def another_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    )


def terminate(pid: int) -> None:
    with another_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def terminate_every_other_backend() -> int:
    """End every connection to the test database but this process's own; how many were ended."""
    own = backend_pid()
    with another_connection() as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
            [own],
        ).fetchone()[0]
    time.sleep(0.2)  # the notices reach the server's idle sockets
    return ended


def wait_until_told(timeout: float = 5) -> None:
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    if not poller.poll(timeout * 1000):
        pytest.fail("the server never told the idle connection it was ended")


def test_a_reused_healthy_connection_costs_a_request_no_round_trip_beyond_its_query(monkeypatch) -> None:
    first = backend_pid()
    start_of_next_request()
    round_trips: list[str] = []
    wait = psycopg.Connection.wait

    def counted_wait(self, gen, *args, **kwargs):
        round_trips.append("sent")
        return wait(self, gen, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", counted_wait)

    assert backend_pid() == first
    assert round_trips == ["sent"]


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it() -> None:
    ended = backend_pid()
    terminate(ended)
    wait_until_told()

    start_of_next_request()

    assert backend_pid() != ended


def test_a_server_answers_the_next_requests_after_postgresql_ended_its_idle_pooled_connections(
    asgi_server_factory,  # noqa: F811
) -> None:
    # `uvicorn kvsite.asgi:application` takes connections from a pool, where they wait idle
    # between requests: a database restart or an idle timeout ends them there.
    server = asgi_server_factory()
    token = apikey_create(name="pool", role="admin").token
    with httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        assert http.post("/api/v1/kv/buckets", json={"name": "pool"}).status_code == 201
        assert http.put("/api/v1/kv/buckets/pool/keys/k", content=b"v").status_code == 200

        assert terminate_every_other_backend() >= 1

        statuses = [http.get("/api/v1/kv/buckets/pool/keys/k").status_code for _ in range(20)]
        statuses += [http.put("/api/v1/kv/buckets/pool/keys/k", content=b"w").status_code for _ in range(5)]
    assert statuses == [200] * 25
