"""`uvicorn kvsite.asgi:application` serves the whole API (a real server process)."""

import base64

import httpx
import pytest

from kvsite.access.apikeys import apikey_create
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture)
from tests.settings_probe import boot

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_ironflow_flow_over_a_real_asgi_server(asgi_server_factory) -> None:  # noqa: F811
    server = asgi_server_factory()
    token = apikey_create(name="e2e", role="admin").token
    with httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.post("/api/v1/kv/buckets", json={"name": "settings", "history": 5}).status_code == 201
        assert http.put("/api/v1/kv/buckets/settings/keys/a/b", content=b'{"x":1}').json() == {"revision": 1}
        conflict = http.put("/api/v1/kv/buckets/settings/keys/a/b", content=b"{}", headers={"If-None-Match": "*"})
        assert conflict.status_code == 412 and conflict.json()["code"] == "failed_precondition"

        entry = http.get("/api/v1/kv/buckets/settings/keys/a/b")
        assert entry.headers["etag"] == '"1"' and base64.b64decode(entry.json()["value"]) == b'{"x":1}'
        assert http.delete("/api/v1/kv/buckets/settings/keys/a/b").status_code == 204
        missing = http.get("/api/v1/kv/buckets/settings/keys/a/b")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
        assert http.get("/api/v1/kv/swagger-ui").status_code == 200
    assert httpx.get(server.http_url + "/api/v1/kv/buckets").status_code == 401


def test_ready_is_503_while_the_database_is_unreachable(asgi_server_factory) -> None:  # noqa: F811
    server = asgi_server_factory(env={"DATABASE_URL": "postgres://postgres@127.0.0.1:1/unreachable"})

    assert httpx.get(server.http_url + "/health").status_code == 200
    ready = httpx.get(server.http_url + "/ready", timeout=30)
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"


@pytest.mark.parametrize(
    ("env", "handler"),
    [
        # Every path reads bodies through the guard first (kvsite/http/bodies.py).
        ({}, "AsgiBodyGuard ASGIHandler"),  # development: the in-memory layer needs the server's own loop
        ({"REDIS_URL": "redis://127.0.0.1:6379/15", "KV_HTTP_THREADS": "3"}, "AsgiBodyGuard WSGIMiddleware 3"),
    ],
)
def test_http_runs_on_django_threads_when_redis_carries_the_events(env, handler) -> None:
    probe = (
        "from kvsite.asgi import application; guard = application.application_mapping['http']; http = guard.app; "
        "threads = getattr(getattr(http, 'executor', None), '_max_workers', '') or ''; "
        "print(type(guard).__name__, type(http).__name__, threads)"
    )
    booted = boot(probe, **env)
    assert booted.returncode == 0, booted.stderr
    assert booted.stdout.split("\n")[-2].strip() == handler
