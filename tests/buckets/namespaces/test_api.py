"""The namespaces API: namespaces CRUD, typed entries, prefixes, compare-and-swap, permissions, audit, events."""

import asyncio
import base64
import json
from collections.abc import Callable, Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from rest_framework.test import APIClient

from buckets.core import store
from buckets.core.events import bucket_group
from buckets.models import Bucket, Entry, Namespace
from kvsite.access.apikeys import apikey_create
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db

MASTER_KEY = "nskey:" + base64.b64encode(bytes(range(32))).decode()
CANARY = "s3cret-NAMESPACE-CANARY-41d2"
NS = "/api/v1/kv/namespaces"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS=MASTER_KEY):
        yield


@pytest.fixture
def admin(client_for) -> APIClient:
    return client_for("admin")


@pytest.fixture
def make_namespace(admin) -> Callable[..., dict]:
    def make(name: str = "app-config", *, secret: bool = False, application: str = "app-123", **fields) -> dict:
        body = {"name": name, "applicationId": application, "isSecretNamespace": secret, **fields}
        response = admin.post(NS, body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return make


def entry_url(namespace: dict, key_path: str = "") -> str:
    return f"/api/v1/kv/{namespace['id']}/entries" + (f"/{key_path}" if key_path else "")


def put(client, namespace: dict, key_path: str, value, value_type: str = "STRING", **fields):
    body = {"value": value, "valueType": value_type, **fields}
    return client.put(entry_url(namespace, key_path), body, format="json")


def audit_rows(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


# --- Namespaces --------------------------------------------------------------------------


def test_create_returns_the_namespace_in_camel_case(admin) -> None:
    response = admin.post(
        NS,
        {
            "name": "production-config",
            "description": "Production settings",
            "applicationId": "app-123",
            "isSecretNamespace": False,
            "defaultTtlSeconds": None,
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "description",
        "applicationId",
        "isSecretNamespace",
        "defaultTtlSeconds",
        "bucket",
        "createdAt",
        "updatedAt",
    }
    assert (body["name"], body["applicationId"], body["isSecretNamespace"]) == ("production-config", "app-123", False)
    assert body["bucket"] == "production-config"


def test_a_plain_namespace_is_a_bucket_of_the_bucket_api_under_its_name(admin, make_namespace) -> None:
    make_namespace("app-config")

    listing = admin.get("/api/v1/kv/buckets").json()
    assert "app-config" in json.dumps(listing)
    assert admin.get("/api/v1/kv/buckets/app-config").status_code == 200


def test_a_secret_namespace_never_appears_in_the_bucket_api(admin, make_namespace) -> None:
    namespace = make_namespace("vault", secret=True)

    bucket = Namespace.objects.get(pk=namespace["id"]).bucket.name
    assert bucket.startswith("SYS_secrets_.ns.")
    assert namespace["bucket"] is None
    assert "vault" not in json.dumps(admin.get("/api/v1/kv/buckets").json())
    assert "SYS_" not in json.dumps(admin.get("/api/v1/kv/buckets").json())


def test_get_list_and_filter_by_application(admin, make_namespace) -> None:
    one = make_namespace("one", application="app-1")
    make_namespace("two", application="app-2")

    assert admin.get(f"{NS}/{one['id']}").json() == one
    assert [n["name"] for n in admin.get(NS).json()["namespaces"]] == ["one", "two"]
    assert [n["name"] for n in admin.get(NS, {"applicationId": "app-1"}).json()["namespaces"]] == ["one"]


def test_names_are_unique_within_an_application(admin, make_namespace) -> None:
    make_namespace("vault", secret=True, application="app-1")

    again = admin.post(NS, {"name": "vault", "applicationId": "app-1", "isSecretNamespace": True}, format="json")
    elsewhere = admin.post(NS, {"name": "vault", "applicationId": "app-2", "isSecretNamespace": True}, format="json")

    assert again.status_code == 409 and again.json()["code"] == "already_exists"
    assert elsewhere.status_code == 201


def test_a_plain_name_is_global_because_bucket_names_are(admin, make_namespace, make_bucket) -> None:
    make_namespace("shared", application="app-1")
    make_bucket("taken")

    other_app = admin.post(NS, {"name": "shared", "applicationId": "app-2"}, format="json")
    over_bucket = admin.post(NS, {"name": "taken", "applicationId": "app-2"}, format="json")

    assert other_app.status_code == 409 and "bucket names are global" in other_app.json()["error"]
    assert over_bucket.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name", "applicationId": "a"}, "name"),
        ({"name": "SYS_x", "applicationId": "a"}, "SYS_"),
        ({"name": "ok"}, "applicationId"),
        ({"name": "ok", "applicationId": "a", "isSecretNamespace": "yes"}, "isSecretNamespace"),
        ({"name": "ok", "applicationId": "a", "defaultTtlSeconds": -1}, "defaultTtlSeconds"),
        ({"name": "ok", "applicationId": "a", "colour": "red"}, "colour"),
    ],
)
def test_invalid_namespace_bodies_are_400_naming_the_field(admin, body, field) -> None:
    response = admin.post(NS, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"
    assert field in response.json()["error"]


def test_update_changes_fields(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")

    response = admin.put(f"{NS}/{namespace['id']}", {"description": "new", "defaultTtlSeconds": 60}, format="json")

    assert response.status_code == 200
    assert (response.json()["description"], response.json()["defaultTtlSeconds"]) == ("new", 60)
    assert response.json()["updatedAt"] >= namespace["updatedAt"]


def test_is_secret_cannot_change_once_the_namespace_holds_entries(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    put(admin, namespace, "a", "1")

    response = admin.put(f"{NS}/{namespace['id']}", {"isSecretNamespace": True}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "failed_precondition"


def test_an_empty_namespace_can_become_secret_and_leaves_the_bucket_api(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")

    response = admin.put(f"{NS}/{namespace['id']}", {"isSecretNamespace": True}, format="json")

    assert response.status_code == 200 and response.json()["isSecretNamespace"] is True
    assert not Bucket.objects.filter(name="APP_cfg").exists()
    assert put(admin, namespace, "a", CANARY).status_code == 200
    assert CANARY.encode() not in b"".join(bytes(e.value) for e in Entry.objects.all())


def test_delete_removes_the_namespace_its_entries_and_history(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    put(admin, namespace, "a", "1")
    put(admin, namespace, "a", "2")

    response = admin.delete(f"{NS}/{namespace['id']}")

    assert response.status_code == 204
    assert admin.get(f"{NS}/{namespace['id']}").status_code == 404
    assert not Bucket.objects.filter(name="APP_cfg").exists()
    assert Entry.objects.count() == 0


def test_unknown_namespace_ids_are_404(admin) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    assert admin.get(f"{NS}/{missing}").status_code == 404
    assert admin.get(f"/api/v1/kv/{missing}/entries/a").json()["code"] == "not_found"


# --- Entries: types --------------------------------------------------------------------------

ROUND_TRIPS = [
    ("STRING", "localhost"),
    ("JSON", {"port": 5432, "tags": ["a", "b"], "ratio": 1.10}),
    ("JSON", [1, 2, 3]),
    ("NUMBER", 3306),
    ("NUMBER", 2.5),
    ("BOOLEAN", True),
    ("BOOLEAN", False),
    ("BINARY", "SGVsbG8gV29ybGQ="),
]


@pytest.mark.parametrize(("value_type", "value"), ROUND_TRIPS)
def test_values_round_trip_in_their_type(admin, make_namespace, value_type, value) -> None:
    namespace = make_namespace()

    written = put(admin, namespace, "config/database/x", value, value_type)
    read = admin.get(entry_url(namespace, "config/database/x"))

    assert written.status_code == 200, written.content
    assert read.status_code == 200
    body = read.json()
    assert (body["value"], body["valueType"], body["version"]) == (value, value_type, 1)
    assert set(body) >= {"id", "keyPath", "value", "valueType", "version", "expiresAt", "metadata", "createdAt"}
    assert body["keyPath"] == "config/database/x"


def test_numbers_keep_their_literal_text(admin, make_namespace) -> None:
    namespace = make_namespace()
    raw = b'{"value": 1.10, "valueType": "NUMBER"}'

    admin.generic("PUT", entry_url(namespace, "n"), raw, content_type="application/json")

    assert b'"value":1.10' in admin.get(entry_url(namespace, "n")).content


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        ("STRING", 5),
        ("JSON", "text"),
        ("JSON", 3),
        ("NUMBER", "3306"),
        ("NUMBER", True),
        ("BOOLEAN", "true"),
        ("BOOLEAN", 1),
        ("BINARY", "not base64!"),
        ("BINARY", 12),
        ("STRING", None),
    ],
)
def test_a_value_not_matching_its_type_is_400_naming_the_field(admin, make_namespace, value_type, value) -> None:
    namespace = make_namespace()

    response = put(admin, namespace, "k", value, value_type)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"
    assert "value" in response.json()["error"] and value_type in response.json()["error"]
    assert Entry.objects.count() == 0


def test_an_unknown_value_type_is_400(admin, make_namespace) -> None:
    response = put(admin, make_namespace(), "k", "x", "DATE")

    assert response.status_code == 400 and "valueType" in response.json()["error"]


def test_metadata_and_timestamps_travel_with_the_entry(admin, make_namespace, clock) -> None:
    namespace = make_namespace()
    first = put(admin, namespace, "k", "1", metadata={"owner": "ops"}).json()
    clock.advance(5)

    second = put(admin, namespace, "k", "2", metadata={"owner": "dev"}).json()

    assert second["metadata"] == {"owner": "dev"}
    assert second["id"] == first["id"]
    assert second["createdAt"] == first["createdAt"]
    assert second["updatedAt"] > first["updatedAt"]
    assert (second["version"], second["reason"]) == (2, "update")
    assert second["changedBy"].startswith("api_key:")


def test_a_value_written_through_the_bucket_api_reads_as_version_1(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    store.entry_put(bucket="APP_cfg", key="raw", value=b"plain text")

    body = admin.get(entry_url(namespace, "raw")).json()

    assert (body["value"], body["valueType"], body["version"]) == ("plain text", "STRING", 1)
    assert put(admin, namespace, "raw", "typed", version=1).json()["version"] == 2


# --- Entries: key paths and listing ------------------------------------------------------------


@pytest.mark.parametrize("key_path", ["a//b", "a/", "sp ace", "a/../b"])
def test_invalid_key_paths_are_400(admin, make_namespace, key_path) -> None:
    assert put(admin, make_namespace(), key_path, "v").status_code == 400


@pytest.mark.parametrize("key_path", ["a/b/rotate", "a/versions", "x/rollback"])
def test_key_paths_ending_in_a_sub_resource_cannot_be_written(admin, make_namespace, key_path) -> None:
    namespace = make_namespace()
    item = {"keyPath": key_path, "value": "v", "valueType": "STRING"}

    in_bulk = admin.post(f"/api/v1/kv/{namespace['id']}/bulk/set", {"entries": [item]}, format="json")

    assert put(admin, namespace, key_path, "v").status_code == 405  # the sub-resource's route, which has no PUT
    assert in_bulk.status_code == 400 and "must not end in" in in_bulk.json()["errors"][0]["error"]


def test_prefix_matches_whole_segments(admin, make_namespace) -> None:
    namespace = make_namespace()
    for key_path in ["config/database/host", "config/database/port", "config/data", "config/datab", "config/api/x"]:
        put(admin, namespace, key_path, "v")

    def listed(prefix: str) -> list[str]:
        body = admin.get(entry_url(namespace), {"prefix": prefix}).json()
        return [entry["keyPath"] for entry in body["entries"]]

    assert listed("config/database") == ["config/database/host", "config/database/port"]
    assert listed("config/data") == ["config/data"]
    assert listed("config/database/") == ["config/database/host", "config/database/port"]
    assert listed("config") == [
        "config/api/x",
        "config/data",
        "config/datab",
        "config/database/host",
        "config/database/port",
    ]
    assert listed("conf") == []


def test_listing_pages_with_a_cursor(admin, make_namespace) -> None:
    namespace = make_namespace()
    for index in range(5):
        put(admin, namespace, f"app/k{index}", "v")

    first = admin.get(entry_url(namespace), {"prefix": "app", "limit": 2}).json()
    second = admin.get(entry_url(namespace), {"prefix": "app", "limit": 2, "cursor": first["nextCursor"]}).json()
    third = admin.get(entry_url(namespace), {"prefix": "app", "limit": 2, "cursor": second["nextCursor"]}).json()

    keys = [e["keyPath"] for page in (first, second, third) for e in page["entries"]]
    assert keys == [f"app/k{index}" for index in range(5)]
    assert third["nextCursor"] is None


def test_plain_listings_carry_values(admin, make_namespace) -> None:
    namespace = make_namespace()
    put(admin, namespace, "a", "1")

    assert admin.get(entry_url(namespace)).json()["entries"][0]["value"] == "1"


# --- Entries: CAS, delete, TTL -------------------------------------------------------------------


def test_version_is_compare_and_swap(admin, make_namespace) -> None:
    namespace = make_namespace()
    put(admin, namespace, "k", "1")
    put(admin, namespace, "k", "2")

    stale = put(admin, namespace, "k", "x", version=1)
    fresh = put(admin, namespace, "k", "3", version=2)

    assert stale.status_code == 409
    assert stale.json()["code"] == "aborted"
    assert stale.json()["currentVersion"] == 2
    assert fresh.status_code == 200 and fresh.json()["version"] == 3
    assert admin.get(entry_url(namespace, "k")).json()["value"] == "3"


def test_compare_and_swap_on_an_absent_entry_is_aborted(admin, make_namespace) -> None:
    response = put(admin, make_namespace(), "k", "x", version=1)

    assert response.status_code == 409
    assert response.json()["currentVersion"] is None


def test_delete_removes_the_entry_and_a_new_one_starts_at_version_1(admin, make_namespace) -> None:
    namespace = make_namespace()
    put(admin, namespace, "k", "1")
    put(admin, namespace, "k", "2")

    assert admin.delete(entry_url(namespace, "k")).status_code == 204
    assert admin.get(entry_url(namespace, "k")).status_code == 404
    assert admin.delete(entry_url(namespace, "k")).status_code == 404
    assert put(admin, namespace, "k", "3").json()["version"] == 1
    assert [v["version"] for v in admin.get(entry_url(namespace, "k") + "/versions").json()["versions"]] == [1]


def test_ttl_seconds_overrides_the_default_and_expired_entries_are_absent(admin, make_namespace, clock) -> None:
    namespace = make_namespace(defaultTtlSeconds=100)
    with_default = put(admin, namespace, "d", "v").json()
    with_own = put(admin, namespace, "o", "v", ttlSeconds=10).json()

    assert with_default["expiresAt"] is not None and with_own["expiresAt"] < with_default["expiresAt"]
    clock.advance(11)
    assert admin.get(entry_url(namespace, "o")).status_code == 404
    assert admin.get(entry_url(namespace, "d")).status_code == 200
    assert [e["keyPath"] for e in admin.get(entry_url(namespace)).json()["entries"]] == ["d"]
    assert put(admin, namespace, "o", "again").json()["version"] == 1


def test_entries_without_ttl_do_not_expire(admin, make_namespace) -> None:
    assert put(admin, make_namespace(), "k", "v").json()["expiresAt"] is None


# --- Events -------------------------------------------------------------------------------------


def receive_all(group: str, action) -> list[dict]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)

    async def receive() -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout=0.2)

    try:
        action()
        events = []
        while True:
            try:
                events.append(async_to_sync(receive)())
            except TimeoutError:
                return events
    finally:
        async_to_sync(layer.group_discard)(group, channel)


def test_writes_publish_change_events_after_commit(admin, make_namespace, django_capture_on_commit_callbacks) -> None:
    namespace = make_namespace("cfg")

    def writes() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            put(admin, namespace, "a", "hello")
        with django_capture_on_commit_callbacks(execute=True):
            admin.delete(entry_url(namespace, "a"))

    events = receive_all(bucket_group("APP_cfg"), writes)

    assert [(e["bucket"], e["key"], e["operation"]) for e in events] == [("cfg", "a", "put"), ("cfg", "a", "purge")]
    record = json.loads(base64.b64decode(events[0]["value"]))
    assert (record["value"], record["type"], record["version"]) == ("hello", "STRING", 1)


def test_secret_namespace_events_carry_no_value(admin, make_namespace, django_capture_on_commit_callbacks) -> None:
    namespace = make_namespace("vault", secret=True)
    bucket = Namespace.objects.get(pk=namespace["id"]).bucket.name

    def writes() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            put(admin, namespace, "db/password", CANARY)

    events = receive_all(bucket_group(bucket), writes)

    assert len(events) == 1
    assert events[0]["value"] == ""
    assert CANARY not in json.dumps(events)


def test_a_refused_write_publishes_nothing(admin, make_namespace, django_capture_on_commit_callbacks) -> None:
    namespace = make_namespace("cfg")
    put(admin, namespace, "a", "1")

    def refused() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert put(admin, namespace, "a", "2", version=7).status_code == 409

    assert receive_all(bucket_group("APP_cfg"), refused) == []


# --- Audit --------------------------------------------------------------------------------------


def test_every_write_is_audited_with_its_outcome(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    put(admin, namespace, "a", "1")
    put(admin, namespace, "a", "2", version=9)
    admin.delete(entry_url(namespace, "a"))

    rows = audit_rows(namespace="APP_cfg")
    assert [(r.action, r.key_path, r.success) for r in rows] == [
        ("WRITE", "", True),  # the namespace's creation
        ("WRITE", "a", True),
        ("WRITE", "a", False),
        ("DELETE", "a", True),
    ]
    assert "is at version 1" in rows[2].reason
    assert rows[1].entry_id is not None and rows[1].actor_type == "api_key"


def test_namespace_operations_are_audited(admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    admin.get(f"{NS}/{namespace['id']}")
    admin.put(f"{NS}/{namespace['id']}", {"description": "d"}, format="json")
    admin.delete(f"{NS}/{namespace['id']}")

    assert [(r.action, r.success) for r in audit_rows(namespace="APP_cfg")] == [
        ("WRITE", True),
        ("READ", True),
        ("WRITE", True),
        ("DELETE", True),
    ]


def test_plain_entry_reads_are_not_audited_but_refusals_are(client_for, admin, make_namespace) -> None:
    namespace = make_namespace("cfg")
    put(admin, namespace, "a", "1")
    before = AuditEvent.objects.count()

    admin.get(entry_url(namespace, "a"))
    admin.get(entry_url(namespace))
    assert AuditEvent.objects.count() == before

    admin.get(entry_url(namespace, "missing"))
    refused = audit_rows(success=False)
    assert [(r.action, r.key_path, r.namespace) for r in refused] == [("READ", "missing", "APP_cfg")]


# --- Permissions ----------------------------------------------------------------------------------


def test_reader_reads_but_cannot_write_or_manage(client_for, make_namespace) -> None:
    namespace = make_namespace("cfg")
    put(client_for("admin"), namespace, "a", "1")
    reader = client_for("reader")

    assert reader.get(NS).status_code == 200
    assert reader.get(entry_url(namespace, "a")).status_code == 200
    assert put(reader, namespace, "a", "2").status_code == 403
    assert reader.delete(entry_url(namespace, "a")).status_code == 403
    assert reader.post(NS, {"name": "x", "applicationId": "a"}, format="json").status_code == 403
    assert reader.put(f"{NS}/{namespace['id']}", {"description": "x"}, format="json").status_code == 403
    assert reader.delete(f"{NS}/{namespace['id']}").status_code == 403


def test_writer_writes_entries_but_cannot_manage_namespaces(client_for, make_namespace) -> None:
    namespace = make_namespace("cfg")
    writer = client_for("writer")

    assert put(writer, namespace, "a", "1").status_code == 200
    assert writer.delete(entry_url(namespace, "a")).status_code == 204
    assert writer.post(NS, {"name": "x", "applicationId": "a"}, format="json").status_code == 403
    assert writer.delete(f"{NS}/{namespace['id']}").status_code == 403


def test_a_key_limited_to_other_namespaces_cannot_reach_the_namespace(client_for, make_namespace) -> None:
    namespace = make_namespace("cfg")

    def scoped(scope: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {apikey_create(name='k', role='admin', scopes=[scope]).token}")
        return client

    limited = scoped("namespace:app-123/other*")

    assert limited.get(entry_url(namespace, "a")).status_code == 403
    assert put(limited, namespace, "a", "1").status_code == 403
    assert limited.get(NS).json()["namespaces"] == []
    assert scoped("namespace:app-123/cfg").get(f"{NS}/{namespace['id']}").status_code == 200
    # A pattern is matched against the namespace's own name, never its internal bucket's.
    assert client_for("admin", buckets="APP_cfg").get(f"{NS}/{namespace['id']}").status_code == 403


def test_access_is_decided_before_the_values_are_checked(client_for, admin, make_namespace) -> None:
    # A caller without access learns nothing from a 400, and a refused value is on record.
    namespace = make_namespace("cfg")
    reader = client_for("reader")
    unknown = {"id": "00000000-0000-4000-8000-000000000000"}

    assert put(reader, namespace, "a", 7, "STRING").status_code == 403
    assert reader.post(NS, {"name": "SYS_x", "applicationId": "a"}, format="json").status_code == 403
    assert put(admin, unknown, "a", 7, "STRING").status_code == 404
    refused = put(admin, namespace, "a", 7, "STRING")
    assert (refused.status_code, refused.json()["error"]) == (400, "value must be a string for valueType STRING")
    assert [(r.action, r.key_path, r.reason) for r in audit_rows(namespace="APP_cfg", success=False)] == [
        ("WRITE", "a", "value must be a string for valueType STRING")
    ]


def test_unauthenticated_requests_are_401(make_namespace) -> None:
    namespace = make_namespace()

    assert APIClient().get(NS).status_code == 401
    assert APIClient().get(entry_url(namespace, "a")).status_code == 401
