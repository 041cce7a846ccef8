"""The items API (/kv/items, /kv/limits): exact JSON, TTL, conditions, limits, listing, envelope, accounts."""

import importlib
import io
import json
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from buckets.core import clock as kv_clock
from buckets.core.events import rfc3339
from buckets.core.exceptions import InvalidArgument
from buckets.items import services as items
from buckets.items.views import ItemDetailApi
from buckets.models import Bucket
from kvsite.access import apikeys
from kvsite.models import ApiKey

pytestmark = pytest.mark.django_db

ITEMS = "/kv/items"
DAY = 24 * 60 * 60


@pytest.fixture(autouse=True)
def _own_rate_limit_buckets(settings) -> None:
    # Rate-limit buckets outlive a test (in-process, or in Redis when REDIS_URL is set);
    # a prefix per test keeps every test's accounts at a full bucket.
    settings.KV_ITEMS_RATELIMIT_PREFIX = f"kvtest-items-{secrets.token_hex(6)}"


@pytest.fixture
def account_client(db) -> Callable[..., APIClient]:
    """A client with a fresh key of ``role`` in ``account``."""

    def make(account: str = "acme", role: str = "admin") -> APIClient:
        token = apikeys.apikey_create(name=f"{account}-{role}", role=role, account=account).token
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def api(account_client) -> APIClient:
    return account_client()


def item_url(key: str) -> str:
    return f"{ITEMS}/{quote(key, safe='')}"


def put(client: APIClient, key: str, body: Any, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("PUT", item_url(key), raw, content_type="application/json", **extra)


def put_value(client: APIClient, key: str, value_json: str, **fields):
    """PUT with the value given as JSON text, so numbers go out exactly as written."""
    extra = "".join(f",{json.dumps(name)}:{json.dumps(field)}" for name, field in fields.items())
    return put(client, key, f'{{"value":{value_json}{extra}}}'.encode())


def ok(response, status: int = 200) -> Any:
    """The envelope's data, after checking the envelope itself."""
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    assert set(body) == {"requestId", "data", "error"}
    assert body["requestId"] and response["X-Request-Id"] == body["requestId"]
    assert body["error"] is None
    return body["data"]


def failed(response, status: int, code: str) -> dict:
    """The envelope's error, after checking status, code and the envelope itself."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"requestId", "data", "error"}
    assert body["requestId"] and response["X-Request-Id"] == body["requestId"]
    assert body["data"] is None
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def literal(text: str | bytes) -> Any:
    """JSON parsed with every number kept as its literal text and objects as ordered pairs."""
    return json.loads(
        text,
        parse_float=lambda s: ("number", s),
        parse_int=lambda s: ("number", s),
        object_pairs_hook=lambda pairs: ("object", pairs),
    )


def stored_value(client: APIClient, key: str) -> Any:
    """The value of a GET as ``literal`` parses it: number texts and name order included."""
    response = client.get(item_url(key))
    ok(response)
    envelope = dict(literal(response.content)[1])
    return dict(envelope["data"][1])["value"]


def nested(depth: int) -> str:
    """A JSON value ``depth`` levels deep (a scalar is 1)."""
    return "[" * (depth - 1) + "1" + "]" * (depth - 1)


# --- Round trips --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value_json",
    [
        '{"theme":"dark","notifications":true}',
        '{"z":1,"a":{"y":[1,2,{"x":null}],"b":{}},"m":[]}',
        '[1,"two",[3.0],{"four":4},[],{},null,true,false]',
        '"plain text"',
        '"ünïcödé, 汉字, emoji 😀, quote \\" backslash \\\\ newline \\n nul \\u0000"',
        '"lone surrogate \\ud800 stays escaped"',
        '""',
        "0",
        "-0",
        "1.10",
        "-0.0",
        "1e400",
        "-1E-400",
        "2.5e+10",
        "12345678901234567890123",
        "1e99999999999999999999",
        "-98765432109876543210987654321.000000000000000000001",
        "0.1",
        "true",
        "false",
        "null",
        nested(64),
        '{"a":' * 63 + "1" + "}" * 63,
    ],
)
def test_every_json_shape_comes_back_exactly(api: APIClient, value_json: str) -> None:
    written = ok(put_value(api, "shape", value_json))

    assert stored_value(api, "shape") == literal(value_json)
    got = ok(api.get(item_url("shape")))
    assert got["key"] == "shape" and got["version"] == written["version"] and got["expiresAt"] is None


def test_numbers_keep_precision_as_text(api: APIClient) -> None:
    ok(put_value(api, "n", "[1.10,1e400,12345678901234567890123,-0.0]"))

    response = api.get(item_url("n"))

    assert b'"value":[1.10,1e400,12345678901234567890123,-0.0]' in response.content


def test_a_pretty_printed_body_is_stored_compact(api: APIClient) -> None:
    ok(put(api, "p", b'{\n  "value" : { "a" : [ 1 , 2 ] ,\n "b" : "x y" }\n}'))

    assert b'"value":{"a":[1,2],"b":"x y"}' in api.get(item_url("p")).content
    assert ok(api.get("/kv/limits"))["usage"]["bytes"] == len(b'{"a":[1,2],"b":"x y"}')


def test_quickstart_from_the_docs(api: APIClient) -> None:
    """The seed's quickstart: set, get, delete."""
    written = ok(put(api, "user-123-prefs", {"value": {"theme": "dark", "notifications": True}}))
    assert written["key"] == "user-123-prefs" and written["expiresAt"] is None
    assert isinstance(written["version"], str)

    got = ok(api.get(item_url("user-123-prefs")))
    assert got == {
        "key": "user-123-prefs",
        "value": {"theme": "dark", "notifications": True},
        "version": written["version"],
        "expiresAt": None,
    }

    assert ok(api.delete(item_url("user-123-prefs"))) == {"deleted": True}
    failed(api.get(item_url("user-123-prefs")), 404, "not_found")


def test_version_changes_on_every_write(api: APIClient) -> None:
    versions = [ok(put(api, "k", {"value": 1}))["version"] for _ in range(3)]
    ok(put(api, "other", {"value": 1}))
    versions.append(ok(put(api, "k", {"value": 1}))["version"])

    assert len(set(versions)) == 4
    assert ok(api.get(item_url("k")))["version"] == versions[-1]


def test_delete_removes_the_key_at_once_and_a_second_delete_is_404(api: APIClient) -> None:
    ok(put(api, "k", {"value": 1}))

    assert ok(api.delete(item_url("k"))) == {"deleted": True}

    failed(api.get(item_url("k")), 404, "not_found")
    failed(api.delete(item_url("k")), 404, "not_found")
    assert ok(api.get(ITEMS))["items"] == []
    usage = ok(api.get("/kv/limits"))["usage"]
    assert (usage["keys"], usage["bytes"]) == (0, 0)


def test_keys_may_hold_slashes_spaces_and_any_printable_unicode(api: APIClient) -> None:
    keys = ["a/b/c", "with space", "q?x=1&y#frag", "ünï/😀", " lead and trail ", "%41", "items"]
    for key in keys:
        ok(put(api, key, {"value": key}))

    for key in keys:
        assert ok(api.get(item_url(key)))["value"] == key
    assert ok(api.get(f"{ITEMS}/a/b/c"))["key"] == "a/b/c"  # unencoded slashes name the same key
    assert [item["key"] for item in ok(api.get(ITEMS))["items"]] == sorted(keys, key=lambda k: k.encode())


# --- TTL ----------------------------------------------------------------------------------


def test_ttl_seconds_expires_the_key(api: APIClient, clock) -> None:
    before = kv_clock.now()
    written = ok(put(api, "session-abc123", {"value": {"userId": "usr_456"}, "ttlSeconds": 3600}))
    expires = written["expiresAt"]
    hour = timedelta(seconds=3600)
    assert expires.endswith("Z")
    assert before + hour <= datetime.fromisoformat(expires) <= kv_clock.now() + hour

    clock.advance(3599)
    assert ok(api.get(item_url("session-abc123")))["expiresAt"] == expires
    assert [item["expiresAt"] for item in ok(api.get(ITEMS))["items"]] == [expires]

    clock.advance(2)
    failed(api.get(item_url("session-abc123")), 404, "not_found")
    assert ok(api.get(ITEMS))["items"] == []
    failed(api.delete(item_url("session-abc123")), 404, "not_found")
    ok(put(api, "session-abc123", {"value": 2, "ifVersion": 0}))  # expired counts as absent


def test_expires_at_expires_the_key_at_that_moment(api: APIClient, clock) -> None:
    moment = (kv_clock.now() + timedelta(days=2)).replace(microsecond=0)
    sent = moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    written = ok(put(api, "k", {"value": 1, "expiresAt": sent}))

    assert written["expiresAt"] == sent
    assert ok(api.get(item_url("k")))["expiresAt"] == sent
    clock.advance((moment - kv_clock.now()).total_seconds() - 1)
    ok(api.get(item_url("k")))
    clock.advance(1)
    failed(api.get(item_url("k")), 404, "not_found")


def test_expires_at_accepts_offsets_and_fractions(api: APIClient) -> None:
    moment = (kv_clock.now() + timedelta(hours=5)).replace(microsecond=250000)
    in_plus_two = (moment + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"

    written = ok(put(api, "k", {"value": 1, "expiresAt": in_plus_two}))

    assert written["expiresAt"] == rfc3339(moment) == ok(api.get(item_url("k")))["expiresAt"]
    assert written["expiresAt"].endswith(".250000Z")


def test_a_write_without_ttl_clears_an_earlier_expiry(api: APIClient, clock) -> None:
    ok(put(api, "k", {"value": 1, "ttlSeconds": 10}))
    assert ok(put(api, "k", {"value": 2}))["expiresAt"] is None

    clock.advance(60)

    assert ok(api.get(item_url("k")))["value"] == 2


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"ttlSeconds": 1}, True),
        ({"ttlSeconds": 365 * DAY}, True),
        ({"ttlSeconds": 0}, False),
        ({"ttlSeconds": 365 * DAY + 1}, False),
        ({"ttlSeconds": -5}, False),
        ({"ttlSeconds": 1.5}, False),
        ({"ttlSeconds": "60"}, False),
        ({"ttlSeconds": True}, False),
        ({"ttlSeconds": 10**40}, False),
        ({"ttlSeconds": None}, True),
        ({"expiresAt": None}, True),
        ({"expiresAt": "2000-01-01T00:00:00Z"}, False),
        ({"expiresAt": "2030-01-01T00:00:00"}, False),
        ({"expiresAt": "2030-01-01"}, False),
        ({"expiresAt": "tomorrow"}, False),
        ({"expiresAt": 1893456000}, False),
        ({"expiresAt": "2030-02-30T00:00:00Z"}, False),
    ],
)
def test_ttl_range_and_forms(api: APIClient, fields: dict, accepted: bool) -> None:
    response = put(api, "k", {"value": 1, **fields})

    if accepted:
        ok(response)
    else:
        failed(response, 400, "invalid_argument")


def test_expires_at_within_365_days_only(api: APIClient) -> None:
    now = kv_clock.now()
    inside = rfc3339(now + timedelta(days=365) - timedelta(seconds=5))
    outside = rfc3339(now + timedelta(days=365) + timedelta(seconds=5))

    ok(put(api, "k", {"value": 1, "expiresAt": inside}))
    failed(put(api, "k", {"value": 1, "expiresAt": outside}), 400, "invalid_argument")


def test_ttl_seconds_and_expires_at_together_are_400(api: APIClient) -> None:
    at = rfc3339(kv_clock.now() + timedelta(hours=1))

    error = failed(put(api, "k", {"value": 1, "ttlSeconds": 60, "expiresAt": at}), 400, "invalid_argument")

    assert "not both" in error["message"]
    failed(api.get(item_url("k")), 404, "not_found")


# --- ifVersion ----------------------------------------------------------------------------


def test_if_version_compare_and_swap_with_strings_and_numbers(api: APIClient) -> None:
    first = ok(put(api, "k", {"value": "a"}))["version"]

    second = ok(put(api, "k", {"value": "b", "ifVersion": first}))["version"]
    stale = failed(put(api, "k", {"value": "c", "ifVersion": first}), 412, "failed_precondition")
    third = ok(put(api, "k", {"value": "d", "ifVersion": int(second)}))["version"]

    assert stale["currentVersion"] == second
    failed(put(api, "k", {"value": "e", "ifVersion": int(second)}), 412, "failed_precondition")
    got = ok(api.get(item_url("k")))
    assert got["value"] == "d" and got["version"] == third


@pytest.mark.parametrize("create_only", [0, "0"])
def test_if_version_zero_creates_only(api: APIClient, create_only) -> None:
    created = ok(put(api, "k", {"value": 1, "ifVersion": create_only}))

    error = failed(put(api, "k", {"value": 2, "ifVersion": create_only}), 412, "failed_precondition")

    assert error["currentVersion"] == created["version"]
    assert ok(api.get(item_url("k")))["value"] == 1
    ok(api.delete(item_url("k")))
    ok(put(api, "k", {"value": 3, "ifVersion": create_only}))


def test_if_version_on_a_missing_key_is_412(api: APIClient) -> None:
    ok(put(api, "other", {"value": 1}))

    error = failed(put(api, "k", {"value": 1, "ifVersion": "1"}), 412, "failed_precondition")

    assert error["currentVersion"] is None


@pytest.mark.parametrize("version", ["abc", "01", "", " 1", "-1", -1, 1.5, True, {}, [], "99999999999999999999"])
def test_malformed_if_version_is_400(api: APIClient, version) -> None:
    ok(put(api, "k", {"value": 1}))

    failed(put(api, "k", {"value": 2, "ifVersion": version}), 400, "invalid_argument")


# --- Limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("k" * 512, True),
        ("k" * 513, False),
        ("é" * 256, True),  # 2 bytes each: 512
        ("é" * 256 + "k", False),  # 513
        ("€" * 170 + "kk", True),  # 3 bytes each: 510 + 2
        ("€" * 171, False),  # 513
        ("😀" * 128, True),  # 4 bytes each: 512
        ("😀" * 128 + "k", False),
        ("tab\there", False),
        ("nul\x00", False),
        ("newline\n", False),
        ("del\x7f", False),
        ("c1\x85", False),
        ("\x1f", False),
    ],
)
def test_key_size_in_utf8_bytes_and_no_control_characters(api: APIClient, key: str, accepted: bool) -> None:
    if accepted:
        ok(put(api, key, {"value": 1}))
        assert ok(api.get(item_url(key)))["key"] == key
        ok(api.delete(item_url(key)))
    else:
        failed(put(api, key, {"value": 1}), 400, "invalid_argument")
        failed(api.get(item_url(key)), 400, "invalid_argument")
        failed(api.delete(item_url(key)), 400, "invalid_argument")


def test_a_rejected_key_creates_no_bucket(api: APIClient) -> None:
    failed(put(api, "k" * 513, {"value": 1}), 400, "invalid_argument")

    assert account_admin_client().get("/api/v1/kv/buckets/items-acme").status_code == 404


def account_admin_client() -> APIClient:
    client = APIClient()
    token = apikeys.apikey_create(name="ops", role="admin").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_value_size_edge_is_one_decimal_megabyte_of_stored_json(api: APIClient) -> None:
    """1 MB = 1_000_000 bytes of the value's compact UTF-8 JSON (quotes of a string included)."""
    limit = django_settings.KV_ITEMS_MAX_VALUE_BYTES
    assert limit == 1_000_000  # the default under test

    at_limit = ok(put_value(api, "big", '"' + "x" * (limit - 2) + '"'))
    error = failed(put_value(api, "big", '"' + "x" * (limit - 1) + '"'), 413, "resource_exhausted")

    assert str(limit + 1) in error["message"]
    got = ok(api.get(item_url("big")))
    assert got["version"] == at_limit["version"] and len(got["value"]) == limit - 2
    # Two-byte characters count twice; escapes count as stored (unescaped).
    ok(put_value(api, "multi", '"' + "é" * ((limit - 2) // 2) + '"'))
    failed(put_value(api, "multi", '"' + "é" * ((limit - 2) // 2) + 'x"'), 413, "resource_exhausted")
    ok(put_value(api, "escaped", '"' + "\\u00e9" * ((limit - 2) // 2) + '"'))


def test_a_body_beyond_its_own_cap_is_413(api: APIClient) -> None:
    cap = ItemDetailApi.body_max_bytes
    assert cap == 4 * django_settings.KV_ITEMS_MAX_VALUE_BYTES + 64 * 1024
    at_cap = b'{"value":"x"' + b" " * (cap - 13) + b"}"

    ok(put(api, "k", at_cap))  # whitespace is not stored
    error = failed(put(api, "k", at_cap + b" "), 413, "resource_exhausted")
    assert error["message"] == f"request body is {cap + 1} bytes; at most {cap} are allowed here"


def test_nesting_beyond_64_levels_is_400(api: APIClient) -> None:
    ok(put_value(api, "deep", nested(64)))

    failed(put_value(api, "deep", nested(65)), 400, "invalid_argument")
    failed(put_value(api, "deep", nested(100_000)), 400, "invalid_argument")


def test_key_quota_is_507_for_new_keys_only(account_client, settings) -> None:
    settings.KV_ITEMS_MAX_KEYS = 3
    api = account_client("small")
    for index in range(3):
        ok(put(api, f"k{index}", {"value": index}))

    error = failed(put(api, "k3", {"value": 3}), 507, "failed_precondition")

    assert "3" in error["message"]
    ok(put(api, "k0", {"value": "overwrite"}))
    limits = ok(api.get("/kv/limits"))
    assert limits["limits"]["keysPerAccount"] == 3 and limits["usage"]["keys"] == 3
    ok(api.delete(item_url("k1")))
    ok(put(api, "k3", {"value": 3}))


def test_limits_show_the_settings_and_the_usage(account_client, settings) -> None:
    # A slow refill, so the tokens left are exact whatever the machine's speed.
    settings.KV_ITEMS_READ_RATE, settings.KV_ITEMS_READ_BURST = 0.001, 20
    settings.KV_ITEMS_WRITE_RATE, settings.KV_ITEMS_WRITE_BURST = 0, 10
    api = account_client("usage")

    fresh = ok(api.get("/kv/limits"))
    ok(put(api, "a", {"value": "xyz"}))
    api.get(item_url("a"))
    api.get(ITEMS)
    used = ok(api.get("/kv/limits"))

    assert fresh == {
        "account": "usage",
        "limits": {
            "keyBytes": 512,
            "valueBytes": 1_000_000,
            "keysPerAccount": 1_000_000,
            "ttlSeconds": {"min": 1, "max": 365 * DAY},
            "listPageSize": 200,
            "valueDepth": 64,
            "reads": {"perSecond": 0.001, "burst": 20},
            "writes": {"perSecond": None, "burst": None},
        },
        "usage": {"keys": 0, "bytes": 0, "readTokens": 20, "writeTokens": None},
    }
    assert used["usage"] == {"keys": 1, "bytes": 5, "readTokens": 18, "writeTokens": None}


# --- Listing --------------------------------------------------------------------------------


def walk(client: APIClient, *, limit: int, prefix: str = "", between: Callable[[int], None] | None = None) -> list[str]:
    """Every key of a paged listing; ``between(page)`` runs after each page."""
    keys: list[str] = []
    cursor = None
    page = 0
    while True:
        params = {"limit": limit, **({"prefix": prefix} if prefix else {}), **({"cursor": cursor} if cursor else {})}
        data = ok(client.get(ITEMS, params))
        assert len(data["items"]) <= limit
        keys += [item["key"] for item in data["items"]]
        cursor = data["nextCursor"]
        if cursor is None:
            return keys
        page += 1
        if between:
            between(page)


def test_listing_is_in_byte_order_with_prefix_and_fields(api: APIClient, clock) -> None:
    for key in ["user/2", "user/10", "user/1", "userx", "admin", "user/é", "user/Z"]:
        ok(put(api, key, {"value": 1}))
    ok(put(api, "user/ttl", {"value": 1, "ttlSeconds": 60}))

    data = ok(api.get(ITEMS, {"prefix": "user/"}))

    assert [item["key"] for item in data["items"]] == ["user/1", "user/10", "user/2", "user/Z", "user/ttl", "user/é"]
    assert data["nextCursor"] is None
    first = data["items"][0]
    assert set(first) == {"key", "version", "expiresAt", "updatedAt"}
    assert first["expiresAt"] is None and first["updatedAt"].endswith("Z")
    assert data["items"][4]["expiresAt"] is not None
    clock.advance(61)
    assert "user/ttl" not in [item["key"] for item in ok(api.get(ITEMS))["items"]]


def test_listing_pages_default_to_50_and_allow_1_to_200(api: APIClient) -> None:
    for index in range(60):
        ok(put(api, f"k{index:03d}", {"value": index}))

    first = ok(api.get(ITEMS))

    assert len(first["items"]) == 50 and first["nextCursor"]
    assert len(ok(api.get(ITEMS, {"limit": 200}))["items"]) == 60
    assert len(ok(api.get(ITEMS, {"limit": 1}))["items"]) == 1
    for bad in ("0", "201", "-1", "x", "1.5"):
        failed(api.get(ITEMS, {"limit": bad}), 400, "invalid_argument")
    for bad in ("***", "AA", "%%%"):
        failed(api.get(ITEMS, {"cursor": bad}), 400, "invalid_argument")
    failed(api.get(ITEMS, {"prefix": "a\x01"}), 400, "invalid_argument")
    failed(api.get(ITEMS, {"prefix": "p" * 513}), 400, "invalid_argument")


def test_a_walk_across_concurrent_writes_returns_each_key_once_and_misses_none(api: APIClient) -> None:
    original = [f"k{index:03d}" for index in range(0, 100, 2)]
    for key in original:
        ok(put(api, key, {"value": 0}))
    written: list[str] = []

    def write_between_pages(page: int) -> None:
        # New keys before and after the cursor, and overwrites of keys already returned.
        for key in (f"k{page:03d}x", f"k{99 - page:03d}", f"a{page}", f"z{page}"):
            ok(put(api, key, {"value": page}))
            written.append(key)
        ok(put(api, original[0], {"value": page}))
        ok(put(api, original[-1], {"value": page}))

    keys = walk(api, limit=7, between=write_between_pages)

    assert len(keys) == len(set(keys)), "a key came twice"
    assert set(original) <= set(keys), "a key that lived throughout was missed"
    assert keys == sorted(keys)
    assert {key for key in written if key.startswith("z")} <= set(keys)  # ahead of the cursor: seen
    assert not {key for key in written if key.startswith("a")} & set(keys)  # behind it: not


@pytest.mark.django_db(transaction=True)
def test_a_walk_while_another_thread_writes(api: APIClient) -> None:
    """Given a writer adding and overwriting keys the whole time, a paged walk still sees each key once."""
    original = [f"k{index:03d}" for index in range(0, 120, 3)]
    for key in original:
        items.item_put(account="acme", key=key, value=0)
    stop = threading.Event()
    written = []

    def writer() -> None:
        try:
            round_ = 0
            while not stop.is_set():
                round_ += 1
                for key in (f"k{round_ % 120:03d}x{round_}", original[round_ % len(original)], f"z{round_}"):
                    items.item_put(account="acme", key=key, value=round_)
                    written.append(key)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        keys = walk(api, limit=3)
    finally:
        stop.set()
        thread.join()

    assert written, "the writer never ran"
    assert len(keys) == len(set(keys))
    assert set(original) <= set(keys)
    assert keys == sorted(keys)


def test_a_walk_with_prefix_and_deletes(api: APIClient) -> None:
    for index in range(30):
        ok(put(api, f"p/{index:02d}", {"value": index}))
        ok(put(api, f"q/{index:02d}", {"value": index}))

    def delete_ahead(page: int) -> None:
        ok(api.delete(item_url(f"p/{29 - page:02d}")))

    keys = walk(api, limit=4, prefix="p/", between=delete_ahead)

    assert all(key.startswith("p/") for key in keys)
    assert len(keys) == len(set(keys))
    assert {f"p/{index:02d}" for index in range(22)} <= set(keys)


@pytest.mark.parametrize("prefix", ["\ud7ff", "a\ud7ff", "\U0010ffff", "\U0010ffff\U0010ffff"])
def test_prefixes_at_the_edges_of_unicode(api: APIClient, prefix: str) -> None:
    inside = [prefix, prefix + "a", prefix + "\U0010ffff" * 2]
    outside = ["\ue000", "a\ue000", "zzz"]
    for key in inside + outside:
        ok(put(api, key, {"value": 1}))

    listed = [item["key"] for item in ok(api.get(ITEMS, {"prefix": prefix}))["items"]]

    assert listed == sorted(inside, key=lambda k: k.encode())


def test_listing_an_account_without_items_is_empty(api: APIClient) -> None:
    assert ok(api.get(ITEMS)) == {"items": [], "nextCursor": None}


# --- Envelope -------------------------------------------------------------------------------


ERROR_CASES = [
    ("bad JSON", "put", "k", b"{not json", 400, "invalid_argument"),
    ("empty body", "put", "k", b"", 400, "invalid_argument"),
    ("body not an object", "put", "k", b"[1]", 400, "invalid_argument"),
    ("missing value", "put", "k", b'{"ttlSeconds": 5}', 400, "invalid_argument"),
    ("unknown field", "put", "k", b'{"value": 1, "ttl": 5}', 400, "invalid_argument"),
    ("duplicate name", "put", "k", b'{"value": 1, "value": 2}', 400, "invalid_argument"),
    ("NaN", "put", "k", b'{"value": NaN}', 400, "invalid_argument"),
    ("invalid UTF-8", "put", "k", b'{"value": "\xff"}', 400, "invalid_argument"),
    ("too deep", "put", "k", b"[" * 100_000, 400, "invalid_argument"),
    ("bad key", "get", "a\x01", None, 400, "invalid_argument"),
    ("missing key", "get", "missing", None, 404, "not_found"),
    ("missing key delete", "delete", "missing", None, 404, "not_found"),
    ("method", "post", "k", b"{}", 405, "method_not_allowed"),
    ("options", "options", "k", None, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(
    ("method", "key", "body", "status", "code"), [case[1:] for case in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_every_error_is_an_envelope(api: APIClient, method: str, key: str, body, status: int, code: str) -> None:
    response = api.generic(method.upper(), item_url(key), body or b"", content_type="application/json")

    failed(response, status, code)


def test_authentication_and_permission_errors_are_envelopes(account_client) -> None:
    anonymous = failed(APIClient().get(item_url("k")), 401, "unauthenticated")
    assert anonymous["message"]
    response = APIClient().get(ITEMS, HTTP_AUTHORIZATION="Bearer kvs_not-a-real-token")
    failed(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="kvsite"'
    failed(APIClient().get(ITEMS, HTTP_AUTHORIZATION="Basic abc"), 401, "unauthenticated")

    reader = account_client("acme", role="reader")
    failed(put(reader, "k", {"value": 1}), 403, "permission_denied")
    failed(reader.delete(item_url("k")), 403, "permission_denied")
    failed(reader.get(item_url("k")), 404, "not_found")
    ok(reader.get(ITEMS))
    ok(reader.get("/kv/limits"))


@pytest.mark.parametrize("path", ["/kv/", "/kv/nope", "/kv/items/", "/kv/limits/x", "/kv/items-x"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_unknown_paths_under_kv_are_404_envelopes(path: str, method: str) -> None:
    response = APIClient().generic(method, path)

    failed(response, 404, "not_found")
    assert "Allow" not in response


def test_wrong_methods_on_known_paths_are_405_envelopes(api: APIClient) -> None:
    for method, path in [("POST", ITEMS), ("PUT", ITEMS), ("DELETE", ITEMS), ("POST", "/kv/limits")]:
        response = api.generic(method, path)
        failed(response, 405, "method_not_allowed")
        assert "OPTIONS" not in response["Allow"]


def test_rate_limited_reads_are_429_envelopes_with_retry_after(api: APIClient, settings) -> None:
    settings.KV_ITEMS_READ_RATE, settings.KV_ITEMS_READ_BURST = 0.5, 2
    ok(put(api, "k", {"value": 1}))
    ok(api.get(item_url("k")))
    ok(api.get(ITEMS))

    response = api.get(item_url("k"))

    error = failed(response, 429, "resource_exhausted")
    assert response["Retry-After"] == "2" and error["retryAfterSeconds"] == 2
    ok(put(api, "k", {"value": 2}))  # writes have their own bucket
    assert ok(api.get("/kv/limits"))["usage"]["readTokens"] == 0  # looking takes nothing


def test_rate_limited_writes_are_429(api: APIClient, settings) -> None:
    settings.KV_ITEMS_WRITE_RATE, settings.KV_ITEMS_WRITE_BURST = 0.001, 2
    ok(put(api, "a", {"value": 1}))
    ok(api.delete(item_url("a")))

    failed(put(api, "a", {"value": 1}), 429, "resource_exhausted")
    ok(api.get(ITEMS))


def test_json_whatever_the_client_accepts(api: APIClient) -> None:
    ok(put(api, "k", {"value": 1}, HTTP_ACCEPT="text/html"))

    assert ok(api.get(item_url("k"), HTTP_ACCEPT="application/xml"))["value"] == 1
    failed(api.get(item_url("missing"), HTTP_ACCEPT="text/html"), 404, "not_found")


def test_the_callers_request_id_is_echoed(api: APIClient) -> None:
    response = api.get(item_url("missing"), HTTP_X_REQUEST_ID="trace-42")

    assert failed(response, 404, "not_found") and json.loads(response.content)["requestId"] == "trace-42"
    assert response["X-Request-Id"] == "trace-42"


def test_an_unexpected_error_is_a_logged_500_envelope(api: APIClient, monkeypatch, caplog) -> None:
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(items, "item_get", broken)

    failed(api.get(item_url("k")), 500, "internal")
    assert any("unhandled error" in record.message for record in caplog.records)


def test_a_value_written_through_the_bucket_api_that_is_not_json_is_not_passed_off_as_json(api: APIClient) -> None:
    ok(put(api, "fine", {"value": 1}))
    ops = account_admin_client()
    assert ops.put("/api/v1/kv/buckets/items-acme/keys/raw", b"\xff not json", content_type="x").status_code == 200
    assert ops.put("/api/v1/kv/buckets/items-acme/keys/json", b"[1, 2.50]", content_type="x").status_code == 200

    failed(api.get(item_url("raw")), 409, "failed_precondition")
    assert b'"value":[1, 2.50]' in api.get(item_url("json")).content


# --- Accounts -------------------------------------------------------------------------------


def test_keys_of_one_account_share_items_and_accounts_are_isolated(account_client) -> None:
    acme_one, acme_two, other = account_client("acme"), account_client("acme", role="writer"), account_client("other")
    ok(put(acme_one, "shared", {"value": "acme's"}))

    assert ok(acme_two.get(item_url("shared")))["value"] == "acme's"
    failed(other.get(item_url("shared")), 404, "not_found")
    failed(other.delete(item_url("shared")), 404, "not_found")
    assert ok(other.get(ITEMS))["items"] == []
    ok(put(other, "shared", {"value": "other's"}))
    assert ok(acme_one.get(item_url("shared")))["value"] == "acme's"
    assert ok(other.get("/kv/limits"))["account"] == "other"


def test_items_live_in_the_accounts_bucket(api: APIClient) -> None:
    ok(put(api, "k", {"value": {"a": 1}}))

    info = account_admin_client().get("/api/v1/kv/buckets/items-acme").json()

    assert info["values"] == 1 and info["history"] == 1 and info["max_value_size"] == 1_000_000


def test_a_keys_default_account_is_its_own_whatever_its_name() -> None:
    issued = [apikeys.apikey_create(name=name, role="reader").api_key for name in ("My App!", "x" * 60, "!!!")]

    assert [api_key.account for api_key in issued] == [f"key-{api_key.pk}" for api_key in issued]
    assert apikeys.apikey_create(name="ci", role="reader", account="Team_A-1").api_key.account == "Team_A-1"
    for bad in ("", "a b", "a" * 41, "ü", "a/b"):
        with pytest.raises(InvalidArgument):
            apikeys.apikey_create(name="ci", role="reader", account=bad)


def key_client(name: str, **options) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {apikeys.apikey_create(name=name, role='admin', **options).token}")
    return client


def test_a_key_named_after_a_staff_user_does_not_reach_their_items() -> None:
    # Given a staff user's items, written with their session
    user = get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    session = APIClient()
    session.force_login(user)
    ok(put(session, "prefs", {"value": "the user's"}))

    # When keys are named so that a slug of the name is the session's account
    for name in (f"User {user.pk}", f"user-{user.pk}", f"USER {user.pk}!"):
        key = key_client(name)

        # Then they see none of the user's items, and their writes never reach them
        failed(key.get(item_url("prefs")), 404, "not_found")
        assert ok(key.get(ITEMS))["items"] == []
        ok(put(key, "prefs", {"value": f"{name}'s"}))
        assert ok(session.get(item_url("prefs")))["value"] == "the user's"


def test_keys_whose_names_slug_alike_keep_their_items_apart() -> None:
    ci, shouting, spaced = key_client("ci"), key_client("CI!"), key_client(" ci ")
    ok(put(ci, "build", {"value": 1}))

    failed(shouting.get(item_url("build")), 404, "not_found")
    failed(spaced.get(item_url("build")), 404, "not_found")
    accounts = {ok(client.get("/kv/limits"))["account"] for client in (ci, shouting, spaced)}
    assert len(accounts) == 3 and all(account.startswith("key-") for account in accounts)


def test_keys_share_items_only_by_naming_an_account() -> None:
    first = apikeys.apikey_create(name="deploy", role="admin")
    ok(put(key_client("deploy", account="team-a"), "k", {"value": "team"}))

    rotated = key_client("deploy v2", account=first.api_key.account)
    team = key_client("other", account="team-a")

    first_client = APIClient()
    first_client.credentials(HTTP_AUTHORIZATION=f"Bearer {first.token}")
    ok(put(first_client, "own", {"value": "first"}))
    assert ok(rotated.get(item_url("own")))["value"] == "first"
    assert ok(team.get(item_url("k")))["value"] == "team"
    failed(team.get(item_url("own")), 404, "not_found")


@pytest.mark.parametrize("account", ["user-1", "user-7", "User-1", "key-99999", "KEY-1", "key-", "user-"])
def test_a_key_may_not_take_an_account_kvsite_gives_out(account: str) -> None:
    get_user_model().objects.create_user("u", password="pw-for-tests", is_staff=True)
    apikeys.apikey_create(name="one", role="reader")

    with pytest.raises(InvalidArgument, match="given by kvsite"):
        apikeys.apikey_create(name="ci", role="reader", account=account)
    with pytest.raises(CommandError, match="given by kvsite"):
        createapikey("ci", "--role", "reader", "--account", account)
    assert not ApiKey.objects.filter(name="ci").exists()


def test_a_new_key_never_gets_an_account_an_older_key_was_given() -> None:
    legacy = apikeys.apikey_create(name="legacy", role="reader", account="acme").api_key
    # A key issued before accounts were per key, whose name slugged to what the next key's own would be.
    ApiKey.objects.filter(pk=legacy.pk).update(account=f"key-{legacy.pk + 1}")

    issued = apikeys.apikey_create(name="next", role="reader").api_key

    assert issued.account != f"key-{legacy.pk + 1}"
    assert issued.account.startswith(f"key-{issued.pk}")


def createapikey(*args: str) -> str:
    """Run the command; its stderr."""
    err = io.StringIO()
    call_command("createapikey", *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def test_createapikey_takes_an_account() -> None:
    assert "account 'acme'" in createapikey("ci", "--role", "writer", "--account", "acme")
    createapikey("Build Bot", "--role", "reader")

    bot = ApiKey.objects.get(name="Build Bot")
    assert dict(ApiKey.objects.values_list("name", "account")) == {"ci": "acme", "Build Bot": f"key-{bot.pk}"}
    with pytest.raises(CommandError, match="account"):
        createapikey("ci", "--role", "writer", "--account", "no spaces")


def test_the_migration_gives_existing_keys_an_account() -> None:
    migration = importlib.import_module("kvsite.migrations.0003_apikey_account")
    plain = ApiKey.objects.create(name="Old Key", token_hash="a" * 64, prefix="kvs_a", role="reader")
    odd = ApiKey.objects.create(name="???", token_hash="b" * 64, prefix="kvs_b", role="reader")
    kept = ApiKey.objects.create(name="x", token_hash="c" * 64, prefix="kvs_c", role="reader", account="mine")

    migration.accounts_from_names(django_apps, None)

    assert ApiKey.objects.get(pk=plain.pk).account == "old-key"
    assert ApiKey.objects.get(pk=odd.pk).account == f"key-{odd.pk}"
    assert ApiKey.objects.get(pk=kept.pk).account == "mine"


def stored(*, account: str, key: str) -> Any:
    """The value of ``account``'s item ``key``, read through the service."""
    return json.loads(items.item_get(account=account, key=key).value.text)


def legacy_key(name: str, account: str) -> ApiKey:
    """A key as an earlier release issued it: its account recorded on it, a slug of its name by default."""
    return ApiKey.objects.create(
        name=name, token_hash=secrets.token_hex(32), prefix="kvs_legacy", role="admin", account=account
    )


def test_the_upgrade_keeps_every_keys_items_and_takes_keys_out_of_user_accounts() -> None:
    migration = importlib.import_module("kvsite.migrations.0004_apikey_account_per_key")
    # Given keys issued by the release before: slug accounts, two of them a staff user's by accident
    user = get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    plain, shared = legacy_key("ci", "ci"), legacy_key("CI!", "ci")
    clash, clash_twin = (
        legacy_key(f"User {user.pk}", f"user-{user.pk}"),
        legacy_key(f"user-{user.pk}", f"user-{user.pk}"),
    )
    orphan = legacy_key("User 999999", "user-999999")
    items.item_put(account="ci", key="build", value=1)
    items.item_put(account=f"user-{user.pk}", key="written", value="by the key or the user")
    items.item_put(account="user-999999", key="orphan", value="by the key alone")

    # When the migration runs
    migration.keys_out_of_user_accounts(django_apps, None)

    # Then slug accounts stay as they were, items and all
    accounts = dict(ApiKey.objects.values_list("pk", "account"))
    assert accounts[plain.pk] == accounts[shared.pk] == "ci"
    assert stored(account="ci", key="build") == 1
    # and keys that sat in a user's account move, together, to one of their own with a copy of its items,
    assert accounts[clash.pk] == accounts[clash_twin.pk] == f"key-{clash.pk}"
    assert stored(account=f"key-{clash.pk}", key="written") == "by the key or the user"
    # which the user keeps too, since either of them may have written them;
    assert stored(account=f"user-{user.pk}", key="written") == "by the key or the user"
    copy, original = (Bucket.objects.get(name=items.items_bucket(a)) for a in (f"key-{clash.pk}", f"user-{user.pk}"))
    counters = ("last_revision", "values_count", "bytes_total", "live_keys", "max_keys", "key_format", "history")
    assert [getattr(copy, name) for name in counters] == [getattr(original, name) for name in counters]
    # an account of no user moves with its key whole.
    assert accounts[orphan.pk] == f"key-{orphan.pk}"
    assert stored(account=f"key-{orphan.pk}", key="orphan") == "by the key alone"
    assert not Bucket.objects.filter(name=items.items_bucket("user-999999")).exists()


def test_the_upgrade_leaves_a_bucket_it_would_move_onto_alone() -> None:
    migration = importlib.import_module("kvsite.migrations.0004_apikey_account_per_key")
    clash = legacy_key("User 5", "user-999998")
    items.item_put(account="user-999998", key="k", value="the key's")
    items.item_put(account=f"key-{clash.pk}", key="k", value="made through the bucket API")

    migration.keys_out_of_user_accounts(django_apps, None)

    moved = ApiKey.objects.get(pk=clash.pk).account
    assert moved.startswith(f"key-{clash.pk}-")
    assert stored(account=moved, key="k") == "the key's"
    assert stored(account=f"key-{clash.pk}", key="k") == "made through the bucket API"


def test_staff_session_users_have_an_account_of_their_own() -> None:
    user = get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    session = APIClient()
    session.force_login(user)
    ok(put(session, "k", {"value": 1}))
    assert ok(session.get("/kv/limits"))["account"] == f"user-{user.pk}"


def test_a_key_without_an_account_may_not_use_items() -> None:
    issued = apikeys.apikey_create(name="legacy", role="admin")
    ApiKey.objects.filter(pk=issued.api_key.pk).update(account="")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")

    failed(client.get(ITEMS), 403, "permission_denied")
