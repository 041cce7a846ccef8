"""The bucket & key REST API as clients see it: status, body, headers."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from buckets.core import store
from buckets.core.names import SYS_CONFIG_PREFIX, SYS_SECRETS_PREFIX
from kvsite.access import apikeys

pytestmark = pytest.mark.django_db

API = "/api/v1/kv/buckets"


def put(client: APIClient, bucket: str, key: str, value: bytes, **headers):
    return client.generic(
        "PUT", f"{API}/{bucket}/keys/{key}", value, content_type="application/octet-stream", **headers
    )


def decoded(body: dict) -> bytes:
    return base64.b64decode(body["value"])


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and body["error"]


# --- the Ironflow docs' example, end to end -----------------------------------------


def test_ironflow_docs_example_works_over_http(admin_client: APIClient) -> None:
    created = admin_client.post(API, {"name": "settings", "ttlSeconds": 3600, "history": 5}, format="json")
    assert created.status_code == 201
    assert created.json() | {"created_at": None} == {
        "name": "settings",
        "description": "",
        "ttl_seconds": 3600,
        "history": 5,
        "max_value_size": 1024 * 1024,
        "max_bytes": -1,
        "values": 0,
        "bytes": 0,
        "created_at": None,
    }

    assert put(admin_client, "settings", "theme", b'{"mode":"dark"}').json() == {"revision": 1}
    assert put(admin_client, "settings", "flags", b'{"betaEnabled":false}', HTTP_IF_NONE_MATCH="*").json() == {
        "revision": 2
    }
    assert_error(put(admin_client, "settings", "flags", b"{}", HTTP_IF_NONE_MATCH="*"), 412, "failed_precondition")

    entry = admin_client.get(f"{API}/settings/keys/theme")
    assert entry.status_code == 200 and entry["ETag"] == '"1"'
    assert json.loads(decoded(entry.json())) == {"mode": "dark"}
    assert entry.json()["operation"] == "put" and entry.json()["created_at"].endswith("Z")

    updated = put(admin_client, "settings", "theme", b'{"mode":"light"}', HTTP_IF_MATCH=str(entry.json()["revision"]))
    assert updated.json() == {"revision": 3} and updated["ETag"] == '"3"'
    assert_error(put(admin_client, "settings", "theme", b"{}", HTTP_IF_MATCH='"1"'), 412, "failed_precondition")

    for key in ["user.123", "user.456", "user.123.name", "user:123"]:
        put(admin_client, "settings", key, b"{}")
    assert admin_client.get(f"{API}/settings/keys", {"filter": "user.*"}).json() == {
        "keys": ["user.123", "user.456"],
        "count": 2,
    }

    assert admin_client.delete(f"{API}/settings/keys/flags").status_code == 204
    assert admin_client.delete(f"{API}/settings/keys/flags?purge=true").status_code == 204
    assert_error(admin_client.get(f"{API}/settings/keys/flags"), 404, "not_found")

    listing = admin_client.get(API).json()
    assert [b["name"] for b in listing["buckets"]] == ["settings"] and listing["count"] == 1
    info = admin_client.get(f"{API}/settings").json()
    # theme keeps both revisions (history 5), flags one purge marker, four user keys.
    assert (info["values"], info["bytes"]) == (7, len(b'{"mode":"dark"}') + len(b'{"mode":"light"}') + 4 * 2)

    assert admin_client.delete(f"{API}/settings").status_code == 204
    assert_error(admin_client.get(f"{API}/settings"), 404, "not_found")


# --- buckets ----------------------------------------------------------------------


def test_create_bucket_accepts_snake_case_and_all_options(admin_client: APIClient) -> None:
    response = admin_client.post(
        API,
        {"name": "c-1_x", "description": "d", "ttl_seconds": 5, "max_value_size": 10, "max_bytes": 100, "history": 64},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["ttl_seconds"], body["max_value_size"], body["max_bytes"], body["history"]) == (5, 10, 100, 64)


def test_create_existing_bucket_is_409(admin_client: APIClient, make_bucket) -> None:
    make_bucket("settings")

    assert_error(admin_client.post(API, {"name": "settings"}, format="json"), 409, "already_exists")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "has space"},
        {"name": "a" * 65},
        {"name": "dots.not.allowed"},
        {"name": "trailing\n"},
        {"name": "SYS_config_default"},
        {"name": "x", "history": 0},
        {"name": "x", "history": 65},
        {"name": "x", "ttl_seconds": -1},
        {"name": "x", "ttlSeconds": "soon"},
        {"name": "x", "max_value_size": 0},
        {"name": "x", "max_value_size": 10**12},
        {"name": "x", "ttl_seconds": 1, "ttlSeconds": 2},
        {"name": 5},
        [],
        "text",
    ],
)
def test_create_bucket_bad_input_is_400(admin_client: APIClient, body) -> None:
    assert_error(admin_client.post(API, body, format="json"), 400, "invalid_argument")


def test_create_bucket_with_malformed_json_is_400(admin_client: APIClient) -> None:
    response = admin_client.generic("POST", API, b"{not json", content_type="application/json")

    assert_error(response, 400, "invalid_argument")


def test_unknown_bucket_is_404_everywhere(admin_client: APIClient) -> None:
    for response in (
        admin_client.get(f"{API}/nope"),
        admin_client.delete(f"{API}/nope"),
        admin_client.get(f"{API}/nope/keys"),
        admin_client.get(f"{API}/nope/keys/k"),
        admin_client.get(f"{API}/nope/keys/k/history"),
        put(admin_client, "nope", "k", b"1"),
        admin_client.delete(f"{API}/nope/keys/k"),
    ):
        assert_error(response, 404, "not_found")


# --- reserved SYS_ buckets ----------------------------------------------------------


@pytest.mark.parametrize("internal", [SYS_CONFIG_PREFIX + "default", SYS_SECRETS_PREFIX + "prod"])
def test_sys_buckets_are_never_listed_nor_reachable(admin_client: APIClient, internal: str) -> None:
    store.bucket_create(name=internal)
    store.entry_put(bucket=internal, key="k", value=b"hidden")

    assert admin_client.get(API).json() == {"buckets": [], "count": 0}
    assert_error(admin_client.get(f"{API}/{internal}"), 404, "not_found")
    assert_error(admin_client.get(f"{API}/{internal}/keys/k"), 404, "not_found")
    assert_error(admin_client.get(f"{API}/{internal}/keys"), 404, "not_found")
    assert_error(put(admin_client, internal, "k", b"x"), 404, "not_found")
    assert_error(admin_client.delete(f"{API}/{internal}"), 404, "not_found")
    assert bytes(store.entry_get(bucket=internal, key="k").value) == b"hidden"


# --- keys -------------------------------------------------------------------------


def test_binary_values_round_trip_without_re_encoding(admin_client: APIClient, make_bucket) -> None:
    make_bucket("bin")
    raw = bytes(range(256))

    put(admin_client, "bin", "blob", raw)

    assert decoded(admin_client.get(f"{API}/bin/keys/blob").json()) == raw


def test_keys_with_slashes_work_in_the_path(admin_client: APIClient, make_bucket) -> None:
    make_bucket("paths", history=2)
    put(admin_client, "paths", "config/database/host", b"db1")
    put(admin_client, "paths", "config/database/host", b"db2")

    assert decoded(admin_client.get(f"{API}/paths/keys/config/database/host").json()) == b"db2"
    history = admin_client.get(f"{API}/paths/keys/config/database/host/history").json()
    assert [decoded(e) for e in history["entries"]] == [b"db1", b"db2"] and history["count"] == 2
    assert admin_client.get(f"{API}/paths/keys").json()["keys"] == ["config/database/host"]
    assert admin_client.delete(f"{API}/paths/keys/config/database/host").status_code == 204


def test_get_at_revision(admin_client: APIClient, make_bucket) -> None:
    make_bucket("r", history=3)
    put(admin_client, "r", "k", b"one")
    put(admin_client, "r", "k", b"two")

    response = admin_client.get(f"{API}/r/keys/k", {"revision": 1})
    assert decoded(response.json()) == b"one" and response["ETag"] == '"1"'
    assert_error(admin_client.get(f"{API}/r/keys/k", {"revision": 9}), 404, "not_found")
    assert_error(admin_client.get(f"{API}/r/keys/k", {"revision": "abc"}), 400, "invalid_argument")
    assert_error(admin_client.get(f"{API}/r/keys/k", {"revision": 0}), 400, "invalid_argument")


def test_history_lists_markers_oldest_first(admin_client: APIClient, make_bucket) -> None:
    make_bucket("h", history=5)
    put(admin_client, "h", "k", b"1")
    admin_client.delete(f"{API}/h/keys/k")

    body = admin_client.get(f"{API}/h/keys/k/history").json()

    assert [(e["revision"], e["operation"], e["value"]) for e in body["entries"]] == [
        (1, "put", "MQ=="),
        (2, "delete", ""),
    ]


# W/"1" never matches (RFC 9110 strong comparison): tests/kvsite/http/test_preconditions.py.
@pytest.mark.parametrize("if_match", ["1", '"1"'])
def test_if_match_accepts_bare_and_quoted_revisions(admin_client: APIClient, make_bucket, if_match: str) -> None:
    make_bucket("cas")
    put(admin_client, "cas", "k", b"1")

    assert put(admin_client, "cas", "k", b"2", HTTP_IF_MATCH=if_match).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_IF_MATCH": "abc"},
        {"HTTP_IF_MATCH": "9" * 40},
        {"HTTP_IF_MATCH": ""},
        {"HTTP_IF_NONE_MATCH": '"3"'},
        {"HTTP_IF_MATCH": "1", "HTTP_IF_NONE_MATCH": "*"},
    ],
)
def test_unparsable_conditions_are_400(admin_client: APIClient, make_bucket, headers) -> None:
    make_bucket("cas")

    assert_error(put(admin_client, "cas", "k", b"1", **headers), 400, "invalid_argument")


@pytest.mark.parametrize("key", ["a..b", ".a", "a.", "a*b", "sp%20ace", "x" * 513])
def test_invalid_keys_are_400(admin_client: APIClient, make_bucket, key: str) -> None:
    make_bucket("k")

    assert_error(put(admin_client, "k", key, b"1"), 400, "invalid_argument")
    assert_error(admin_client.get(f"{API}/k/keys/{key}"), 400, "invalid_argument")


def test_value_too_large_is_413_and_bucket_full_is_507(admin_client: APIClient, make_bucket) -> None:
    make_bucket("small", max_value_size=8, max_bytes=12)

    assert_error(put(admin_client, "small", "a", b"123456789"), 413, "resource_exhausted")
    assert put(admin_client, "small", "a", b"12345678").status_code == 200
    assert_error(put(admin_client, "small", "b", b"12345"), 507, "failed_precondition")
    assert admin_client.get(f"{API}/small").json()["bytes"] == 8


def test_body_larger_than_any_bucket_allows_is_413(admin_client: APIClient, make_bucket, settings) -> None:
    make_bucket("big")

    response = put(admin_client, "big", "k", b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))

    assert_error(response, 413, "resource_exhausted")


def test_delete_and_purge_of_missing_keys_are_404(admin_client: APIClient, make_bucket) -> None:
    make_bucket("d")

    assert_error(admin_client.delete(f"{API}/d/keys/nope"), 404, "not_found")
    assert_error(admin_client.delete(f"{API}/d/keys/nope?purge=true"), 404, "not_found")
    assert_error(admin_client.delete(f"{API}/d/keys/nope?purge=maybe"), 400, "invalid_argument")


def test_delete_with_stale_if_match_is_412(admin_client: APIClient, make_bucket) -> None:
    make_bucket("d")
    put(admin_client, "d", "k", b"1")
    put(admin_client, "d", "k", b"2")

    assert_error(admin_client.delete(f"{API}/d/keys/k", HTTP_IF_MATCH="1"), 412, "failed_precondition")
    assert admin_client.delete(f"{API}/d/keys/k", HTTP_IF_MATCH="2").status_code == 204


# --- listing ------------------------------------------------------------------------


def test_key_listing_with_wildcards_and_pages(admin_client: APIClient, make_bucket) -> None:
    make_bucket("l")
    for key in ["user.1", "user.2", "user.1.name", "user:1", "a"]:
        put(admin_client, "l", key, b"1")

    assert admin_client.get(f"{API}/l/keys", {"filter": "user.>"}).json()["keys"] == [
        "user.1",
        "user.1.name",
        "user.2",
    ]
    assert admin_client.get(f"{API}/l/keys", {"filter": "*"}).json()["keys"] == ["a", "user:1"]
    page = admin_client.get(f"{API}/l/keys", {"limit": 3}).json()
    assert page["keys"] == ["a", "user.1", "user.1.name"] and page["count"] == 3
    rest = admin_client.get(f"{API}/l/keys", {"limit": 3, "cursor": page["next_cursor"]}).json()
    assert rest == {"keys": ["user.2", "user:1"], "count": 2}
    assert_error(admin_client.get(f"{API}/l/keys", {"filter": "user.>.x"}), 400, "invalid_argument")
    assert_error(admin_client.get(f"{API}/l/keys", {"limit": "0"}), 400, "invalid_argument")
    assert_error(admin_client.get(f"{API}/l/keys", {"cursor": "%%%"}), 400, "invalid_argument")


# --- errors are always JSON ---------------------------------------------------------


def test_unknown_api_paths_and_methods_answer_json(admin_client: APIClient) -> None:
    assert_error(admin_client.get("/api/v1/kv/nothing-here"), 404, "not_found")
    assert_error(admin_client.patch(API, {}, format="json"), 405, "method_not_allowed")


# --- OpenAPI ----------------------------------------------------------------------


def test_openapi_schema_and_local_swagger_ui(admin_client: APIClient) -> None:
    schema = admin_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/kv/buckets/{bucket}/keys/{key}" in schema.json()["paths"]

    page = admin_client.get("/api/v1/kv/swagger-ui")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "https://" not in html


def test_unknown_api_paths_are_json_404_for_writes_too(admin_client: APIClient) -> None:
    for method in ("put", "post", "delete", "patch"):
        response = getattr(admin_client, method)("/api/v1/kv/not-a-uuid/entries/x")
        assert_error(response, 404, "not_found")


# --- An items account's bucket --------------------------------------------------------------


def scoped_client(scope: str) -> APIClient:
    client = APIClient()
    token = apikeys.apikey_create(name="scoped", role="admin", scopes=[scope]).token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_an_items_bucket_is_its_account_to_the_bucket_api(client_for) -> None:
    """Given an account's items bucket, then bucket scopes do not reach it (whatever their glob),
    the account's scope does, and nobody creates one through the bucket API (before, a bucket scope
    read every account's items and a writer could make `items-user-1` before its owner)."""
    store.bucket_create(name="APP_items-acme", key_format="text")
    store.entry_put(bucket="APP_items-acme", key="k", value=b"{}")

    for scope in ("bucket:*", "bucket:items-*", "bucket:*acme*"):
        assert scoped_client(scope).get("/api/v1/kv/buckets/items-acme/keys/k").status_code == 403
        assert "items-acme" not in str(scoped_client(scope).get("/api/v1/kv/buckets").json())
    assert scoped_client("items:acme").get("/api/v1/kv/buckets/items-acme/keys/k").status_code == 200
    assert scoped_client("items:other").get("/api/v1/kv/buckets/items-acme/keys/k").status_code == 403
    created = client_for("admin").post("/api/v1/kv/buckets", {"name": "items-user-1"}, format="json")
    assert (created.status_code, created.json()["code"]) == (400, "invalid_argument")
    assert "items API" in created.json()["error"]
