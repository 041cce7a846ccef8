"""Request logs: one JSON access line per request with its request id; no token or secret value in any line."""

import base64
import io
import json
import logging
import urllib.request
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from buckets.core import store
from kvsite.http.request_log import JsonFormatter, RedactingFilter, redact
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture: real server processes)
from tests.settings_probe import boot

pytestmark = pytest.mark.django_db

SECRET_VALUE = "s3cr3t-LOG-CANARY-5d1e"
MASTER_KEYS = "log:" + base64.b64encode(bytes(range(32))).decode()
ENVIRONMENT = {"HTTP_X_IRONFLOW_ENVIRONMENT_ID": "prod"}


class JsonLines:
    """What a JSON handler configured like production's wrote."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict]:
        return [record for record in self.records() if record["logger"] == "kvsite.access"]


@pytest.fixture
def json_log(caplog) -> Iterator[JsonLines]:
    """A handler on the root logger with the production profile's formatter and filter."""
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield JsonLines(stream)
    root.removeHandler(handler)


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("admin", name="log-test-key")


@pytest.fixture
def client(token) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", **ENVIRONMENT)
    return api


@pytest.fixture(autouse=True)
def master_keys(settings) -> None:
    settings.KV_MASTER_KEYS = MASTER_KEYS


def test_an_api_request_writes_one_json_access_line_with_its_request_id(json_log, client, make_bucket) -> None:
    make_bucket("logs")

    response = client.get("/api/v1/kv/buckets/logs/keys", {"filter": "user.*", "ticket": "t-123"})

    assert response.status_code == 200
    [line] = json_log.access()
    assert line["request_id"] == response["X-Request-Id"]
    assert line["method"] == "GET" and line["status"] == 200 and line["level"] == "INFO"
    assert line["path"] == "/api/v1/kv/buckets/logs/keys"
    assert line["route"] == "api/v1/kv/buckets/<str:bucket>/keys"
    assert line["query"] == "filter=user.%2A&ticket=[redacted]"
    assert line["principal"] == "log-test-key" and line["principal_id"].startswith("api_key#")
    assert line["remote_addr"] == "127.0.0.1"
    assert 0 <= line["duration_ms"] < 10_000


def test_the_callers_request_id_is_the_one_logged(json_log, client) -> None:
    response = client.get("/api/v1/kv/buckets", HTTP_X_REQUEST_ID="trace-7")

    assert response["X-Request-Id"] == "trace-7"
    assert [line["request_id"] for line in json_log.access()] == ["trace-7"]


@pytest.mark.django_db(transaction=True)  # secrets' nested transactions on SQLite, as in test_plaintext
def test_a_token_and_a_secret_value_never_reach_a_log_line(json_log, caplog, client, token) -> None:
    # given a bearer token on every request and a secret written, rewritten and revealed
    caplog.set_level(logging.DEBUG)
    created = client.post("/api/v1/secrets", {"name": "db/password", "value": SECRET_VALUE}, format="json")
    updated = client.put("/api/v1/secrets/db/password", {"value": SECRET_VALUE + "-2"}, format="json")
    revealed = client.get("/api/v1/secrets/db/password/value")
    refused = APIClient().get("/api/v1/secrets", HTTP_AUTHORIZATION=f"Bearer {token}x", **ENVIRONMENT)
    # and code that carelessly logs a header or a body
    logging.getLogger("kvsite.test").warning("headers %s", {"HTTP_AUTHORIZATION": f"Bearer {token}"})
    logging.getLogger("kvsite.test").warning('body {"name": "db/password", "value": "%s"}', SECRET_VALUE)

    # then the API worked, and no line holds the token or the value
    assert (created.status_code, updated.status_code, revealed.status_code, refused.status_code) == (201, 200, 200, 401)
    assert revealed.json()["value"] == SECRET_VALUE + "-2"
    assert len(json_log.access()) == 4
    for output in (json_log.text, caplog.text):
        assert token not in output and token[4:20] not in output
        assert SECRET_VALUE not in output
    assert "[redacted]" in json_log.text


def test_an_unhandled_500_is_logged_with_the_request_id_and_no_token(
    json_log, client, token, make_bucket, monkeypatch
) -> None:
    make_bucket("logs")

    def broken(**kwargs):
        raise RuntimeError(f"boom, Authorization: Bearer {token}")

    monkeypatch.setattr(store, "entry_get", broken)

    response = client.get("/api/v1/kv/buckets/logs/keys/k")

    assert response.status_code == 500
    request_id = response["X-Request-Id"]
    errors = [line for line in json_log.records() if line["level"] == "ERROR"]
    assert errors, json_log.text
    assert all(line["request_id"] == request_id for line in errors)
    assert any("RuntimeError: boom" in line.get("exc", "") for line in errors)
    [access] = json_log.access()
    assert access["status"] == 500 and access["request_id"] == request_id
    assert token not in json_log.text and token[4:20] not in json_log.text
    assert "Authorization: [redacted]" in json_log.text


@pytest.mark.parametrize(
    ("raw", "scrubbed"),
    [
        ("Authorization: Bearer kvs_abcdefgh1234", "Authorization: [redacted]"),
        ("{'HTTP_AUTHORIZATION': 'Basic dXNlcjpwYXNz'}", "{'HTTP_AUTHORIZATION': [redacted]}"),
        ("token kvs_AbC-_12345678 end", "token kvs_[redacted] end"),
        ('{"value": "hunter2", "name": "db"}', '{"value": [redacted], "name": "db"}'),
        ("password=hunter2&limit=5", "password=[redacted]&limit=5"),
        ("KV_MASTER_KEYS=k1:" + "A" * 43 + "=", "KV_MASTER_KEYS=[redacted]"),
        ("GET /api/v1/secrets/db/value 200 3.1ms", "GET /api/v1/secrets/db/value 200 3.1ms"),
        ("filter=user.*&limit=100", "filter=user.*&limit=100"),
        ("ticket=[redacted]&x=1", "ticket=[redacted]&x=1"),
    ],
)
def test_redact_scrubs_tokens_and_secret_looking_pairs(raw: str, scrubbed: str) -> None:
    assert redact(raw) == scrubbed


def test_the_production_profile_logs_json_and_development_text() -> None:
    probe = "import logging; print(type(logging.getLogger().handlers[0].formatter).__name__)"
    production = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50, "KV_MASTER_KEYS": MASTER_KEYS}

    assert boot(probe, **production).stdout.split() == ["JsonFormatter"]
    assert boot(probe).stdout.split()[-1:] == ["TextFormatter"]
    assert boot(probe, KV_LOG_FORMAT="json").stdout.split()[-1:] == ["JsonFormatter"]
    assert boot(probe, KV_LOG_FORMAT="text", **production).stdout.split() == ["TextFormatter"]


@pytest.mark.django_db(transaction=True)
def test_a_live_server_logs_json_lines_without_the_token_or_the_secret(asgi_server_factory, token) -> None:  # noqa: F811
    server = asgi_server_factory(env={"KV_LOG_FORMAT": "json", "KV_MASTER_KEYS": MASTER_KEYS})
    headers = {"Authorization": f"Bearer {token}", "X-Ironflow-Environment-ID": "prod"}

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310  (loopback server of this test)
            server.http_url + path, data=data, method=method, headers={**headers, "Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers["X-Request-Id"]

    created = call("POST", "/api/v1/secrets", {"name": "api/key", "value": SECRET_VALUE})
    updated = call("PUT", "/api/v1/secrets/api/key", {"value": SECRET_VALUE + "-2"})
    revealed = call("GET", "/api/v1/secrets/api/key/value")

    assert [status for status, _ in (created, updated, revealed)] == [201, 200, 200]
    log = server.log()
    assert token not in log and token[4:20] not in log
    assert SECRET_VALUE not in log
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"kvsite.access"' in line]
    assert [line["request_id"] for line in access if line["path"].startswith("/api/")] == [
        request_id for _, request_id in (created, updated, revealed)
    ]
    assert [line["status"] for line in access if line["path"].startswith("/api/")] == [201, 200, 200]
