"""Every JSON endpoint of every dialect reads its body the same way: one reader, JSON Content-Types only, caps.

A table of the endpoints drives each with hostile bodies (each a 4xx in the
dialect's error shape, nothing written), with every Content-Type that is not
JSON (415), and with staff sessions. Exact dialects (items, namespace entries)
keep what plain ones refuse, and give it back as sent.
"""

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from rest_framework.test import APIClient

from buckets.configs import services as configs
from buckets.core import store
from buckets.core.keys import MAX_KEY_BYTES
from buckets.models import Bucket, Entry, Namespace
from buckets.namespaces import services as namespaces
from buckets.namespaces.entries import namespace_entry_put
from buckets.namespaces.inputs import MAX_BULK_ITEMS
from buckets.namespaces.views import BULK_KEYS_BODY_BYTES, BULK_SET_MAX_VALUES
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from secrets_app import services as secrets

pytestmark = pytest.mark.django_db

MASTER_KEY = "jb:" + base64.b64encode(bytes(range(32))).decode()
SLOT = b"SLOT"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(
        KV_MASTER_KEYS=MASTER_KEY, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    ):
        yield


@dataclass
class World:
    """A config document, a namespace with one entry, a secret: what the endpoints write to."""

    namespace: str = ""


@pytest.fixture
def world(db) -> World:
    system = audit_actor_system(name="tests")
    configs.config_set(environment="prod", name="flags", data={"doc": 1}, actor=system)
    namespace = namespaces.namespace_create(name="ns", application_id="app", actor=system)
    namespace_entry_put(namespace_id=namespace.id, key_path="k", value="v", value_type="STRING", actor=system)
    secrets.secret_create(environment="prod", name="s", value="old", actor=system)
    return World(namespace=str(namespace.id))


@pytest.fixture
def api(db) -> APIClient:
    client = APIClient()
    token = apikeys.apikey_create(name="admin", role="admin", account="acme").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")
    return client


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World], str]
    template: bytes  # the body, with SLOT where the value under test goes
    valid: bytes  # a value for SLOT that makes a body the endpoint takes
    ok: int  # its status for that body
    named: str  # how a refusal of {"a": 1e999} or {"a": "\ud800"} in SLOT names the field
    keeps: bool = False  # exact: 1e999 and a lone surrogate in SLOT are kept, not refused
    envelope: bool = False  # items: errors come in {"requestId", "data", "error"}
    headers: dict = field(default_factory=dict)


def ns_path(tail: str) -> Callable[[World], str]:
    return lambda world: f"/api/v1/kv/{world.namespace}/{tail}"


ENDPOINTS = [
    Endpoint("config POST", "POST", lambda w: "/api/v1/config/flags", b'{"doc":SLOT}', b"2", 200, "doc.a"),
    Endpoint("config PATCH", "PATCH", lambda w: "/api/v1/config/flags", b'{"doc":SLOT}', b"2", 200, "doc.a"),
    Endpoint(
        "config rollback", "POST", lambda w: "/api/v1/config/flags/rollback", b'{"revision":SLOT}', b"1", 200,
        "revision.a",
    ),
    Endpoint(
        "items PUT", "PUT", lambda w: "/kv/items/k", b'{"value":SLOT}', b'"v"', 200, "value", keeps=True,
        envelope=True,
    ),
    Endpoint(
        "namespace create", "POST", lambda w: "/api/v1/kv/namespaces",
        b'{"name":"made","applicationId":"app","description":SLOT}', b'"d"', 201, "description",
    ),
    Endpoint(
        "namespace entry PUT", "PUT", ns_path("entries/k"), b'{"valueType":"JSON","value":SLOT}', b"[1]", 200,
        "value", keeps=True,
    ),
    Endpoint("bulk get", "POST", ns_path("bulk/get"), b'{"keys":[SLOT]}', b'"k"', 200, "keys[0].a"),
    Endpoint(
        "bulk set", "POST", ns_path("bulk/set"), b'{"entries":[{"keyPath":"k","valueType":"JSON","value":SLOT}]}',
        b"[1]", 200, "value", keeps=True,
    ),
    Endpoint("bulk delete", "POST", ns_path("bulk/delete"), b'{"keys":[SLOT]}', b'"k"', 200, "keys[0].a"),
    Endpoint("secrets POST", "POST", lambda w: "/api/v1/secrets", b'{"name":"t","value":SLOT}', b'"v"', 201, "value.a"),
    Endpoint("secrets PUT", "PUT", lambda w: "/api/v1/secrets/s", b'{"value":SLOT}', b'"new"', 200, "value.a"),
    Endpoint(
        "bucket create", "POST", lambda w: "/api/v1/kv/buckets", b'{"name":"made","description":SLOT}', b'"d"', 201,
        "description.a",
    ),
]  # fmt: skip
BY_NAME = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[endpoint.name for endpoint in ENDPOINTS])
PLAIN = [endpoint for endpoint in ENDPOINTS if not endpoint.keeps]

DEEP = b"[" * 10_000 + b"]" * 10_000
HOSTILE = {
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "duplicate names": b'{"a":1,"a":2}',
    "10,000 levels": DEEP,
    "invalid UTF-8": b'"\xff\xfe"',
}
UNSTORABLE = {"1e999": b'{"a":1e999}', "lone surrogate": b'{"a":"\\ud800"}'}


def call(client, endpoint: Endpoint, world: World, slot: bytes, content_type: str | None = "application/json"):
    body = endpoint.template.replace(SLOT, slot)
    if content_type is None:
        # No Content-Type: the test client always sends one, so it is sent empty (what a server sees as none).
        return client.generic(endpoint.method, endpoint.path(world), body, content_type=None, CONTENT_TYPE="")
    return client.generic(endpoint.method, endpoint.path(world), body, content_type=content_type)


def error_of(endpoint: Endpoint, response) -> dict:
    """``{"code", "message"}`` of an error response, after checking its dialect's shape."""
    assert response["Content-Type"] == "application/json", response.content
    body = json.loads(response.content)
    if endpoint.envelope:
        assert set(body) == {"requestId", "data", "error"} and body["data"] is None
        assert set(body["error"]) >= {"code", "message"}
        return body["error"]
    assert set(body) >= {"error", "code"}
    return {"code": body["code"], "message": body["error"]}


def stored() -> tuple:
    """Everything a write could change."""
    return (
        sorted(Entry.objects.values_list("bucket__name", "key", "revision", "operation")),
        sorted(Bucket.objects.values_list("name", "last_revision")),
        sorted(Namespace.objects.values_list("name", "description")),
    )


# --- Hostile bodies ---------------------------------------------------------------------------------


@BY_NAME
@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_body_is_a_4xx_in_the_dialects_shape_and_writes_nothing(api, world, endpoint, case) -> None:
    before = stored()

    response = call(api, endpoint, world, HOSTILE[case])

    # 413 where the body is over a small endpoint's cap before anything else is looked at.
    assert response.status_code in (400, 413), response.content
    code = "invalid_argument" if response.status_code == 400 else "resource_exhausted"
    assert error_of(endpoint, response)["code"] == code
    assert stored() == before


@pytest.mark.parametrize("endpoint", PLAIN, ids=[endpoint.name for endpoint in PLAIN])
@pytest.mark.parametrize("case", UNSTORABLE)
def test_a_value_that_cannot_be_stored_is_a_400_naming_its_field(api, world, endpoint, case) -> None:
    before = stored()

    response = call(api, endpoint, world, UNSTORABLE[case])

    assert response.status_code == 400, response.content
    assert endpoint.named in error_of(endpoint, response)["message"]
    assert stored() == before


def test_exact_dialects_give_back_what_plain_ones_refuse(api, world) -> None:
    sent = '{"a":1e999,"b":"\\ud800","\\udc00":-0.0,"n":' + "1" * 5000 + "}"

    item = api.generic("PUT", "/kv/items/k", f'{{"value":{sent}}}', content_type="application/json")
    entry = api.generic(
        "PUT", ns_path("entries/e")(world), f'{{"valueType":"JSON","value":{sent}}}', content_type="application/json"
    )
    bulk = api.generic(
        "POST",
        ns_path("bulk/set")(world),
        f'{{"entries":[{{"keyPath":"b","valueType":"JSON","value":{sent}}}]}}',
        content_type="application/json",
    )

    assert [item.status_code, entry.status_code, bulk.status_code] == [200, 200, 200]
    assert f'"value":{sent},' in api.get("/kv/items/k").content.decode()
    for key in ("e", "b"):
        assert f'"value":{sent}}}' in api.get(ns_path(f"entries/{key}")(world)).content.decode()


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "namespaces", b'{"name":"x","applicationId":"app","description":"\\ud800"}', "description has a lone"),
        ("PUT", "namespace", b'{"applicationId":"a\\udfff"}', "applicationId has a lone"),
        # PostgreSQL's text columns cannot hold NUL: a DataError, so a 500, had it got that far.
        ("POST", "namespaces", b'{"name":"x","applicationId":"app","description":"a\\u0000b"}',
         "description must not contain NUL"),
    ],
)  # fmt: skip
def test_namespace_text_fields_refuse_what_a_database_column_cannot_hold(api, world, method, path, body, message):
    before = stored()
    url = "/api/v1/kv/namespaces" if path == "namespaces" else f"/api/v1/kv/namespaces/{world.namespace}"

    response = api.generic(method, url, body, content_type="application/json")

    assert response.status_code == 400 and response.json()["error"].startswith(message)
    assert stored() == before


# --- Content-Type ---------------------------------------------------------------------------------------


@BY_NAME
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "*/*", None]
)
def test_a_json_body_with_another_content_type_is_a_415(api, world, endpoint, content_type) -> None:
    before = stored()

    response = call(api, endpoint, world, endpoint.valid, content_type=content_type)

    assert response.status_code == 415, response.content
    assert error_of(endpoint, response)["code"] == "invalid_argument"
    assert stored() == before


@BY_NAME
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_with_or_without_its_charset_is_read(api, world, endpoint, content_type) -> None:
    response = call(api, endpoint, world, endpoint.valid, content_type=content_type)

    assert response.status_code == endpoint.ok, response.content


@BY_NAME
def test_an_empty_body_is_the_views_own_400(api, world, endpoint) -> None:
    before = stored()

    response = api.generic(endpoint.method, endpoint.path(world), b"", content_type="application/json")

    assert response.status_code == 400, response.content
    assert stored() == before


def test_config_patch_takes_a_merge_patch(api, world) -> None:
    response = api.generic(
        "PATCH", "/api/v1/config/flags", b'{"doc":null,"on":true}', content_type="application/merge-patch+json"
    )

    assert response.status_code == 200
    assert configs.config_get(environment="prod", name="flags").data == {"on": True}


def test_the_bucket_key_put_still_takes_raw_bytes_of_any_type(api, world) -> None:
    store.bucket_create(name="APP_raw")

    for content_type in ("text/plain", "application/octet-stream", "application/x-www-form-urlencoded"):
        response = api.generic("PUT", "/api/v1/kv/buckets/raw/keys/k", b"a=1&{not json", content_type=content_type)
        assert response.status_code == 200, response.content
    assert bytes(store.entry_get(bucket="APP_raw", key="k").value) == b"a=1&{not json"


# --- Caps and counts -----------------------------------------------------------------------------------


def test_bulk_get_and_delete_take_about_a_megabyte(api, world) -> None:
    assert 1_000_000 < BULK_KEYS_BODY_BYTES < 1_100_000
    longest = ["k" * (MAX_KEY_BYTES - 4) + f"{i:04d}" for i in range(MAX_BULK_ITEMS)]
    full = json.dumps({"keys": longest}, indent=1).encode()
    assert len(full) < BULK_KEYS_BODY_BYTES
    over = b'{"keys":["' + b"k" * BULK_KEYS_BODY_BYTES + b'"]}'

    assert api.post(ns_path("bulk/get")(world), full, content_type="application/json").status_code == 200
    too_large = api.post(ns_path("bulk/get")(world), over, content_type="application/json")

    assert too_large.status_code == 413
    assert too_large.json()["code"] == "resource_exhausted"


@pytest.mark.parametrize("operation", ["get", "delete", "set"])
def test_a_bulk_list_one_item_too_long_is_a_400_naming_the_limit(api, world, operation) -> None:
    if operation == "set":
        items = [{"keyPath": f"k{i}", "valueType": "STRING", "value": "v"} for i in range(MAX_BULK_ITEMS + 1)]
        body = {"entries": items}
    else:
        body = {"keys": [f"k{i}" for i in range(MAX_BULK_ITEMS + 1)]}
    before = stored()

    response = api.post(ns_path(f"bulk/{operation}")(world), body, format="json")

    assert response.status_code == 400
    assert f"holds {MAX_BULK_ITEMS + 1} items; at most {MAX_BULK_ITEMS} are allowed" in response.json()["error"]
    assert stored() == before


@pytest.mark.parametrize(("operation", "member"), [("get", "keys"), ("delete", "keys"), ("set", "entries")])
def test_a_bulk_body_of_a_hundred_thousand_items_is_refused_by_its_count(api, world, operation, member) -> None:
    # Counted item by item before the body is parsed whole: the answer speaks of the limit, not the size.
    item = {"keyPath": "k", "valueType": "NUMBER", "value": 1} if member == "entries" else "k"
    body = json.dumps({member: [item] * 100_000}).encode()
    before = stored()

    response = api.post(ns_path(f"bulk/{operation}")(world), body, content_type="application/json")

    if member == "entries":
        # Bulk set counts values first (400,000 of them here), which bounds what any later look costs.
        assert response.status_code == 413, response.json()
        assert response.json()["error"].startswith("request body holds more than")
    else:
        assert response.status_code == 400, response.json()
        assert response.json()["error"] == (
            f"{member} holds more than {MAX_BULK_ITEMS} items; at most {MAX_BULK_ITEMS} are allowed per call"
        )
    assert stored() == before


def test_a_bulk_body_padded_with_another_member_is_refused_before_it_is_read(api, world) -> None:
    body = b'{"pad": [' + b",".join([b"0"] * 100_000) + b'], "entries": []}'

    response = api.post(ns_path("bulk/set")(world), body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "unknown field(s) pad; allowed: entries"


def test_a_bulk_set_of_more_values_than_it_takes_is_413_before_it_is_parsed(api, world) -> None:
    # Eight entries of 20,000 numbers: each fits a record, together they are too much to parse.
    value = b"[" + b",".join([b"0"] * 20_000) + b"]"
    entry = b'{"keyPath": "k", "valueType": "JSON", "value": ' + value + b"}"
    body = b'{"entries": [' + b",".join([entry] * 8) + b"]}"
    before = stored()

    response = api.post(ns_path("bulk/set")(world), body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == (
        f"request body holds more than {BULK_SET_MAX_VALUES} JSON values; at most {BULK_SET_MAX_VALUES} are allowed"
    )
    assert stored() == before


def test_a_bulk_entry_too_big_to_store_is_refused_before_the_body_is_parsed(api, world) -> None:
    value = b'"' + b"x" * 1_500_000 + b'"'
    body = b'{"entries": [{"keyPath": "a", "valueType": "STRING", "value": ' + value + b"}]}"
    before = stored()

    response = api.post(ns_path("bulk/set")(world), body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("entries[0] is at least 1")
    assert stored() == before


@pytest.mark.parametrize("where", ["items", "entry"])
def test_a_single_value_body_too_big_for_any_value_is_413_before_it_is_parsed(api, world, where) -> None:
    # Two million numbers: parsed exactly, they would cost seconds of CPU before the size check.
    value = b"[" + b",".join([b"0"] * 1_500_000) + b"]"
    if where == "items":
        path, body = "/kv/items/big", b'{"value": ' + value + b"}"
    else:
        path, body = ns_path("entries/big")(world), b'{"valueType": "JSON", "value": ' + value + b"}"
    before = stored()

    response = api.put(path, body, content_type="application/json")

    assert response.status_code == 413, response.json()
    error = response.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert message.startswith("value is at least 2") and "bytes as compact JSON; at most" in message
    assert stored() == before


def test_a_bulk_list_is_counted_before_any_item_is_looked_at(api, world) -> None:
    # Items that are each wrong in a different way: the count is all the answer speaks of.
    body = {"keys": [[], {}, 1, None, "", "x" * 1000] * (MAX_BULK_ITEMS // 6 + 1)}

    response = api.post(ns_path("bulk/get")(world), body, format="json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("keys holds")
    assert "errors" not in response.json()


@pytest.mark.parametrize(
    ("path", "cap"),
    [("/api/v1/config/flags/rollback", DEFAULT_BODY_MAX_BYTES), ("/api/v1/kv/buckets", DEFAULT_BODY_MAX_BYTES)],
)
def test_small_bodies_have_small_caps(api, world, path, cap) -> None:
    body = b'{"revision":1,"name":"x","pad":"' + b" " * cap + b'"}'

    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == f"request body is {len(body)} bytes; at most {cap} are allowed here"


# --- Staff sessions ---------------------------------------------------------------------------------------


@pytest.fixture
def session() -> tuple[Client, str]:
    staff = get_user_model().objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    client.get("/admin/")  # renders a form, which sets the CSRF cookie
    return client, client.cookies["csrftoken"].value


def test_a_staff_session_posts_json_to_every_dialect_with_its_csrf_token(session, world) -> None:
    client, token = session

    created = client.post(
        "/api/v1/kv/namespaces",
        {"name": "from-dashboard", "applicationId": "app"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    config = client.post(
        "/api/v1/config/flags",
        {"doc": 3},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod",
    )
    item = client.put("/kv/items/k", {"value": 1}, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert created.status_code == 201, created.content
    assert created.json()["name"] == "from-dashboard"
    assert config.status_code == 200 and item.status_code == 200
    assert configs.config_get(environment="prod", name="flags").data == {"doc": 3}


def test_a_staff_session_without_the_csrf_token_is_refused(session, world) -> None:
    client, _ = session
    before = stored()

    response = client.post(
        "/api/v1/kv/namespaces", {"name": "forged", "applicationId": "app"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert stored() == before


def test_a_staff_session_gets_the_same_refusals_as_a_key(session, world) -> None:
    client, token = session
    before = stored()

    duplicate = client.post(
        "/api/v1/kv/namespaces", b'{"name":"a","name":"b","applicationId":"app"}', content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    form = client.post("/api/v1/kv/namespaces", {"name": "x", "applicationId": "app"}, HTTP_X_CSRFTOKEN=token)

    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "error": 'body: duplicate member name "name" (each name may appear once)',
        "code": "invalid_argument",
    }
    assert form.status_code == 415
    assert stored() == before
