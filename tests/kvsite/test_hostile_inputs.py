"""Hostile inputs, by hand: every one is a clear 4xx with a JSON body, never a 500."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

API = "/api/v1/kv/buckets"


@pytest.fixture
def kv(admin_client: APIClient, make_bucket) -> APIClient:
    make_bucket("h")
    return admin_client


def assert_4xx_json(response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body.get("code") or body.get("error", {}).get("code")) is not None


def test_a_10_mb_body_is_413(kv: APIClient) -> None:
    response = kv.generic("PUT", f"{API}/h/keys/big", b"x" * (10 * 1024 * 1024))

    assert_4xx_json(response, 413)


@pytest.mark.parametrize("path", [f"{API}/h/keys/%FF%FE", f"{API}/h/keys/a%00b", f"{API}/h/keys/%C3%28"])
def test_invalid_utf8_and_nul_in_keys_are_400(kv: APIClient, path: str) -> None:
    assert_4xx_json(kv.generic("PUT", path, b"1"))
    assert_4xx_json(kv.get(path))


@pytest.mark.parametrize("key", ["a%2Fb", "..", "a/../b", "%2E%2E", "./a"])
def test_encoded_slashes_and_dot_segments_never_escape_the_bucket(kv: APIClient, key: str) -> None:
    response = kv.generic("PUT", f"{API}/h/keys/{key}", b"1")

    assert response.status_code in (200, 400, 404), response.content
    if response.status_code == 200:
        # Whatever key it became, it lives in bucket h and reads back from there.
        listed = kv.get(f"{API}/h/keys").json()["keys"]
        assert len(listed) == 1
    else:
        assert_4xx_json(response)


@pytest.mark.parametrize("header", ["9" * 10_000, '"' + "1" * 30 + '"', "W/" * 1000, "1,2,3"])
def test_huge_or_odd_if_match_is_400(kv: APIClient, header: str) -> None:
    assert_4xx_json(kv.generic("PUT", f"{API}/h/keys/k", b"1", HTTP_IF_MATCH=header), 400)


def test_a_10000_token_wildcard_filter_is_400(kv: APIClient) -> None:
    pattern = ".".join(["*"] * 10_000)

    assert_4xx_json(kv.get(f"{API}/h/keys", {"filter": pattern}), 400)


def test_a_long_but_valid_filter_works(kv: APIClient) -> None:
    pattern = ".".join(["*"] * 200)

    assert kv.get(f"{API}/h/keys", {"filter": pattern}).status_code == 200


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deeply_nested_json_in_config_and_items_is_400(admin_client: APIClient, depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    config = admin_client.generic(
        "POST", "/api/v1/config/deep", b'{"a":' + deep + b"}", content_type="application/json"
    )
    item = admin_client.generic("PUT", "/kv/items/deep", b'{"value":' + deep + b"}", content_type="application/json")

    assert_4xx_json(config, 400)
    assert_4xx_json(item, 400)


def test_bucket_creation_with_hostile_json(admin_client: APIClient) -> None:
    for body in (
        b"[" * 100_000,
        b'{"name": "' + b"a" * 1_000_000 + b'"}',
        b"\xff\xfe",
        json.dumps({"name": None}).encode(),
    ):
        assert_4xx_json(admin_client.generic("POST", API, body, content_type="application/json"))


def test_unauthenticated_hostile_requests_are_still_json(db) -> None:
    response = Client().generic("PUT", f"{API}/h/keys/%FF", b"x" * 100)

    assert_4xx_json(response, 401)
