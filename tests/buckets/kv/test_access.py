"""Who reaches which bucket through the bucket API and its watch (issue #16).

A bucket is ``bucket:<public name>``, except a bucket a namespace owns: that is the
namespace's (``namespace:<applicationId>/<name>``), readable here under the namespace's
scope and written only through the namespaces API.
"""

import asyncio
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from buckets.core import store
from buckets.models import Bucket, Entry
from buckets.namespaces import services as namespaces
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from kvsite.models import AuditEvent
from tests.handshake import handshake

pytestmark = pytest.mark.django_db

API = "/api/v1/kv/buckets"
# (method, path, body) of every bucket-API operation on the bucket {b}, key k.
READS = [
    ("get", f"{API}/{{b}}", None),
    ("get", f"{API}/{{b}}/keys", None),
    ("get", f"{API}/{{b}}/keys/k", None),
    ("get", f"{API}/{{b}}/keys/k/history", None),
]
WRITES = [
    ("put", f"{API}/{{b}}/keys/k", b"forged"),
    ("delete", f"{API}/{{b}}/keys/k", None),
    ("delete", f"{API}/{{b}}", None),
]


@pytest.fixture
def scoped(db) -> Callable[..., APIClient]:
    """A client whose key has ``role`` and exactly ``scopes``."""

    def make(*scopes: str, role: str = "admin") -> APIClient:
        token = apikeys.apikey_create(name=f"{role} {' '.join(scopes)}"[:100], role=role, scopes=list(scopes)).token
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture(autouse=True)
def buckets(make_bucket) -> None:
    """``orders``, a bucket of the bucket API, and ``cfg``, namespace ``app-1/cfg``'s bucket; each has key k."""
    make_bucket("orders")
    namespaces.namespace_create(name="cfg", application_id="app-1", actor=audit_actor_system(name="test"))
    for bucket in ("APP_orders", "APP_cfg"):
        store.entry_put(bucket=bucket, key="k", value=b"v")


def call(client: APIClient, method: str, path: str, body: bytes | None, bucket: str):
    path = path.format(b=bucket)
    if method == "put":
        return client.generic("PUT", path, body, content_type="application/octet-stream")
    return getattr(client, method)(path)


def listed(client: APIClient) -> list[str]:
    response = client.get(API)
    assert response.status_code == 200, response.content
    return [bucket["name"] for bucket in response.json()["buckets"]]


# --- Buckets of the bucket API ---------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
@pytest.mark.parametrize("scope", ["bucket:other-*", "namespace:*", "config:*", "items:*", "secrets:*"])
def test_a_key_scoped_elsewhere_is_refused_on_every_operation(scoped, scope, method, path, body) -> None:
    response = call(scoped(scope), method, path, body, "orders")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert Entry.objects.filter(bucket__name="APP_orders", key="k", is_latest=True, operation="put").exists()


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_a_bucket_scope_that_matches_gets_in(scoped, method, path, body) -> None:
    assert call(scoped("bucket:ord*"), method, path, body, "orders").status_code in (200, 204)


def test_a_refusal_comes_before_the_body_is_read(scoped, client_for) -> None:
    # The declaration is decided first: no 400 about a body the caller may not send.
    malformed = b'{"name": '

    for client in (client_for("reader"), scoped("namespace:*")):
        response = client.generic("POST", API, malformed, content_type="application/json")
        assert response.status_code == 403, response.content
    assert scoped("bucket:x*").generic("POST", API, malformed, content_type="application/json").status_code == 400


def test_creating_decides_on_the_name_in_the_body(scoped) -> None:
    limited = scoped("bucket:orders-*")

    assert limited.post(API, {"name": "elsewhere"}, format="json").status_code == 403
    assert limited.post(API, {"name": "orders-us"}, format="json").status_code == 201
    assert scoped("namespace:*", "bucket:cfg").post(API, {"name": "cfg"}, format="json").status_code == 409
    assert not Bucket.objects.filter(name="APP_elsewhere").exists()


# --- A bucket a namespace owns ---------------------------------------------------------------


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:cfg", "bucket:*cfg*", "bucket:APP_*", "bucket:*_*"])
@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_a_bucket_scope_does_not_reach_a_namespace_bucket(scoped, scope, method, path, body) -> None:
    response = call(scoped(scope), method, path, body, "cfg")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("scope", ["namespace:app-1/cfg", "namespace:app-1/*"])
@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_the_namespace_scope_reads_its_bucket(scoped, scope, method, path, body) -> None:
    client = scoped(scope, role="reader")

    assert call(client, method, path, body, "cfg").status_code == 200
    assert call(client, method, path, body, "orders").status_code == 403
    assert call(scoped("namespace:app-2/*"), method, path, body, "cfg").status_code == 403


@pytest.mark.parametrize("scopes", [(), ("namespace:app-1/cfg",)])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_namespace_bucket_is_written_only_through_the_namespaces_api(scoped, scopes, method, path, body) -> None:
    response = call(scoped(*scopes), method, path, body, "cfg")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "failed_precondition"
    assert "namespace 'app-1/cfg'" in response.json()["error"]
    assert "/api/v1/kv/namespaces" in response.json()["error"]
    latest = Entry.objects.get(bucket__name="APP_cfg", key="k", is_latest=True)
    assert (latest.operation, bytes(latest.value)) == ("put", b"v")


def test_a_writer_without_the_namespace_scope_is_refused_before_the_wrong_door(scoped) -> None:
    # The 409 that names the namespaces API is for those who may touch the namespace at all.
    response = call(scoped("bucket:*", role="writer"), "put", f"{API}/{{b}}/keys/k", b"x", "cfg")

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert bytes(Entry.objects.get(bucket__name="APP_cfg", key="k", is_latest=True).value) == b"v"


# --- Listing ---------------------------------------------------------------------------------


def test_the_listing_shows_only_what_the_scopes_reach(scoped, client_for, make_bucket) -> None:
    make_bucket("orders-eu")

    assert listed(client_for("reader")) == ["cfg", "orders", "orders-eu"]
    assert listed(scoped("bucket:*")) == ["orders", "orders-eu"]
    assert listed(scoped("bucket:orders-*", "namespace:app-1/*")) == ["cfg", "orders-eu"]
    assert listed(scoped("bucket:cfg")) == []
    refused = scoped("namespace:app-1/*").get(API)
    assert refused.status_code == 403, "a listing of buckets needs a bucket scope"


# --- Audit -----------------------------------------------------------------------------------


def test_refused_bucket_deletions_are_audited(scoped) -> None:
    assert scoped("bucket:other").delete(f"{API}/orders").status_code == 403
    refused = AuditEvent.objects.order_by("id").last()
    assert scoped().delete(f"{API}/cfg").status_code == 409
    owned = AuditEvent.objects.order_by("id").last()

    assert (refused.action, refused.namespace, refused.success) == ("DELETE", "APP_orders", False)
    assert "may not access bucket:orders" in refused.reason
    assert (owned.action, owned.namespace, owned.success) == ("DELETE", "APP_cfg", False)
    assert Bucket.objects.filter(name__in=["APP_orders", "APP_cfg"]).count() == 2


# --- The watch -------------------------------------------------------------------------------


def watch(bucket: str, *scopes: str, role: str = "reader") -> int:
    """The status of a watch of ``bucket`` by a key with ``scopes`` (200: let in)."""
    token = apikeys.apikey_create(name="watcher", role=role, scopes=list(scopes)).token
    return asyncio.run(handshake(f"{API}/{bucket}/watch?include=current", token=token)).status


@pytest.mark.django_db(transaction=True)
def test_the_watch_decides_as_the_reads_do() -> None:
    assert watch("orders") == 200
    assert watch("orders", "bucket:orders") == 200
    assert watch("orders", "bucket:other") == 403
    assert watch("orders", "namespace:*") == 403
    assert watch("cfg") == 200
    assert watch("cfg", "namespace:app-1/cfg") == 200
    for scope in ("bucket:*", "bucket:cfg", "bucket:APP_*", "config:*"):
        assert watch("cfg", scope) == 403, scope
    assert watch("nope", "bucket:other") == 403
    assert watch("nope", "bucket:nope") == 404


@pytest.mark.django_db(transaction=True)
def test_a_watch_needs_the_read_permission() -> None:
    token = apikeys.apikey_create(name="metrics only", role="none", permissions=["metrics:read"]).token

    refused = asyncio.run(handshake(f"{API}/orders/watch", token=token))

    assert (refused.status, refused.frame["code"]) == (403, "permission_denied")
