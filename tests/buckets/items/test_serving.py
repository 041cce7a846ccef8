"""The items API's keys on every serving path: a key is the UTF-8 its percent-escapes spell, or a 400.

Each server decodes a request path in its own way before Django sees it: uvicorn turns a
percent-escape that is not UTF-8 into U+FFFD (so ``pre%FFsuf`` and ``pre%FEsuf`` would be one
key), a WSGI server hands Django the bytes and Django escapes them again (so ``pre%FFsuf``
would be the key a client writes as ``pre%25FFsuf``). Both are refused, on each path users run.
"""

import contextlib
import secrets
from collections.abc import Iterator

import httpx
import pytest

from buckets.core import store
from buckets.core.exceptions import BucketNotFound
from buckets.items import services as items
from kvsite.access.apikeys import apikey_create
from tests.live_server import SERVING_PATHS, AsgiServer, redis_available, server_redis_url, start_asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture(scope="module", params=SERVING_PATHS)
def server(request, django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    serving = request.param
    if serving != "development" and not redis_available(server_redis_url()):
        pytest.skip(f"the {serving} path needs Redis at {server_redis_url()}")
    # Rate-limit buckets of its own, so earlier runs on one Redis leave it a full bucket.
    env = {"KV_ITEMS_RATELIMIT_PREFIX": f"kvtest-items-{secrets.token_hex(6)}"}
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        served = start_asgi_server(serving=serving, env=env)
        stack.callback(served.stop)
        yield served


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    token = apikey_create(name="paths", role="admin", account="paths").token
    with httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        yield client


def stored_keys() -> list[str]:
    try:
        bucket = store.bucket_get(name=items.items_bucket("paths"))
    except BucketNotFound:
        return []
    return sorted(store.live_entries(bucket=bucket).values_list("key", flat=True))


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None and body["error"]["code"] == "invalid_argument"
    assert body["requestId"] == response.headers["X-Request-Id"]
    return body["error"]["message"]


@pytest.mark.parametrize("escaped", ["pre%FFsuf", "pre%FEsuf", "pre%C3suf", "pre%C3%28suf", "%ED%A0%80", "%C0%AF"])
def test_a_key_whose_escapes_are_not_utf8_is_a_400_and_writes_nothing(client: httpx.Client, escaped: str) -> None:
    put = client.put(f"/kv/items/{escaped}", json={"value": 1})

    assert "UTF-8" in refused(put)
    assert "UTF-8" in refused(client.get(f"/kv/items/{escaped}"))
    assert "UTF-8" in refused(client.delete(f"/kv/items/{escaped}"))
    assert stored_keys() == []


def test_keys_that_only_looked_alike_stay_apart(client: httpx.Client) -> None:
    # Given keys a server used to confuse with refused ones: a real U+FFFD, and a literal "%FF"
    for escaped, value in [("pre%EF%BF%BDsuf", "replacement"), ("pre%25FFsuf", "percent"), ("pre%C3%A9suf", "e")]:
        assert client.put(f"/kv/items/{escaped}", json={"value": value}).status_code == 200

    # Then each reads back as itself, and the refused forms reach none of them
    assert client.get("/kv/items/pre%EF%BF%BDsuf").json()["data"]["value"] == "replacement"
    assert client.get("/kv/items/pre%25FFsuf").json()["data"]["value"] == "percent"
    assert client.get("/kv/items/pre%C3%A9suf").json()["data"]["key"] == "preésuf"
    refused(client.get("/kv/items/pre%FFsuf"))
    assert stored_keys() == ["pre%FFsuf", "preésuf", "pre\ufffdsuf"]


def test_a_listing_prefix_whose_escapes_are_not_utf8_is_a_400(client: httpx.Client) -> None:
    assert client.put("/kv/items/pre%EF%BF%BD", json={"value": 1}).status_code == 200

    assert "UTF-8" in refused(client.get("/kv/items?prefix=pre%FF"))
    assert [item["key"] for item in client.get("/kv/items?prefix=pre%EF%BF%BD").json()["data"]["items"]] == [
        "pre\ufffd"
    ]
