"""The one error mapping (kvsite.http.errors): a database that cannot be reached is a JSON 503 on every API."""

from collections.abc import Iterator

import pytest
from django.db import connection
from rest_framework.test import APIClient

from kvsite.access import apikeys


@pytest.fixture
def database_lost() -> Iterator[type[Exception]]:
    """From here on every query fails with the driver's own error, as Django's wrapper never saw it.

    Django's query hooks run outside the wrapper that turns driver errors into
    Django's, so this is the error a view gets when code reaches the driver past a
    Django cursor. A server pointed at an unreachable database cannot show it:
    Django wraps that failure (even psycopg's pool timeout) into its own error.
    """
    driver_error = connection.Database.OperationalError

    def lost(execute, sql, params, many, context):
        raise driver_error("the connection is lost")

    with connection.execute_wrapper(lost):
        yield driver_error


@pytest.fixture
def api(db) -> APIClient:
    token = apikeys.apikey_create(name="errors", role="admin", account="acme").token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_the_drivers_own_connection_error_is_a_503_on_the_key_api(api: APIClient, database_lost) -> None:
    response = api.get("/api/v1/kv/buckets/b/keys/k")

    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable", "code": "unavailable"}


def test_the_drivers_own_connection_error_is_a_503_envelope_on_the_items_api(api: APIClient, database_lost) -> None:
    response = api.get("/kv/items/k")

    assert response.status_code == 503
    assert response.json() == {
        "requestId": response["X-Request-Id"],
        "data": None,
        "error": {"code": "unavailable", "message": "database unavailable"},
    }
