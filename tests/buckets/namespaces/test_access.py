"""Who reaches a namespace: every route declares ``namespace:<applicationId>/<name>``, scopes of that kind open it.

A key's ``bucket:`` scopes open no namespace, whatever their glob would match of an internal
bucket name (``APP_…``, ``SYS_secrets_.ns.…``); refusals are on the audit log as before.
"""

import base64
from collections.abc import Callable, Iterator

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from buckets.models import Namespace
from buckets.namespaces import entries, services
from buckets.namespaces.exceptions import NamespaceChanged
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from kvsite.access.guard import Resource
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_DELETE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
    SECRET_ROTATE,
)
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db

NS = "/api/v1/kv/namespaces"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
SECRET = "hunter2-NS-ACCESS-CANARY-5c0d"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS="ak:" + base64.b64encode(bytes(range(32))).decode()):
        yield


def key_client(*scopes: str, role: str = "admin", permissions: tuple[str, ...] = ()) -> APIClient:
    """A client whose key has ``role`` (and ``permissions``), limited to ``scopes``."""
    issued = apikeys.apikey_create(name="scoped-key", role=role, scopes=list(scopes), permissions=list(permissions))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    return client


@pytest.fixture
def admin(client_for) -> APIClient:
    return client_for("admin")


@pytest.fixture
def make_namespace(admin) -> Callable[..., dict]:
    def make(name: str, *, application: str = "app-1", secret: bool = False) -> dict:
        body = {"name": name, "applicationId": application, "isSecretNamespace": secret, "description": "d"}
        response = admin.post(NS, body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return make


@pytest.fixture
def vault(admin, make_namespace) -> dict:
    """A secret namespace ``app-1/prod-vault`` holding ``db/password`` (two versions)."""
    namespace = make_namespace("prod-vault", secret=True)
    for value in (SECRET, SECRET + "-2"):
        response = admin.put(
            f"/api/v1/kv/{namespace['id']}/entries/db/password", {"value": value, "valueType": "STRING"}, format="json"
        )
        assert response.status_code == 200
    return namespace


# Every route under a namespace id, one call each: (route, method, path after the id, body).
NAMESPACE_CALLS = [
    ("kv-namespace", "get", "", None),
    ("kv-namespace", "put", "", {"description": "changed"}),
    ("kv-namespace", "delete", "", None),
    ("kv-ns-entries", "get", "/entries", None),
    ("kv-ns-entry", "get", "/entries/db/password", None),
    ("kv-ns-entry", "put", "/entries/db/password", {"value": "v", "valueType": "STRING"}),
    ("kv-ns-entry", "delete", "/entries/db/password", None),
    ("kv-ns-entry-rotate", "post", "/entries/db/password/rotate", {"value": "v"}),
    ("kv-ns-entry-versions", "get", "/entries/db/password/versions", None),
    ("kv-ns-entry-rollback", "post", "/entries/db/password/rollback", {"version": 1}),
    ("kv-ns-bulk-get", "post", "/bulk/get", {"keys": ["db/password"]}),
    ("kv-ns-bulk-set", "post", "/bulk/set", {"entries": [{"keyPath": "k", "value": "v", "valueType": "STRING"}]}),
    ("kv-ns-bulk-delete", "post", "/bulk/delete", {"keys": ["db/password"]}),
]
CALL_IDS = [f"{method.upper()} {route}" for route, method, _, _ in NAMESPACE_CALLS]


def call(client: APIClient, namespace_id: str, method: str, path: str, body: dict | None):
    url = f"{NS}/{namespace_id}" if not path else f"/api/v1/kv/{namespace_id}{path}"
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


# --- Scopes of another kind open nothing -----------------------------------------------------


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:*ns*", "bucket:*_*", "bucket:*prod*"])
@pytest.mark.parametrize(("route", "method", "path", "body"), NAMESPACE_CALLS, ids=CALL_IDS)
def test_a_bucket_scope_reaches_no_namespace_route(vault, scope, route, method, path, body) -> None:
    # Given a key limited to buckets whose pattern matched the internal names of every (secret) namespace
    response = call(key_client(scope), vault["id"], method, path, body)

    assert response.status_code == 403, response.content
    assert response.json() == {
        "error": "this key may not access namespace:app-1/prod-vault",
        "code": "permission_denied",
    }
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:APP_*", "bucket:a-*"])
def test_a_bucket_scope_neither_lists_nor_creates_namespaces(make_namespace, scope) -> None:
    make_namespace("a-ns")
    client = key_client(scope)

    listing = client.get(NS)
    created = client.post(NS, {"name": "a-new", "applicationId": "app-1"}, format="json")

    assert (listing.status_code, created.status_code) == (403, 403)
    assert listing.json()["error"] == "this key may not access namespace"
    assert not Namespace.objects.filter(name="a-new").exists()


def test_a_plain_namespace_is_a_namespace_on_both_apis_when_refused(make_namespace) -> None:
    # Given a key limited to buckets a-*: plain namespace a-ns keeps its entries in bucket a-ns, which
    # the bucket API names as the namespace too (buckets/kv/access.py), so the bucket scope reaches
    # neither and both refusals name the namespace, never APP_a-ns.
    namespace = make_namespace("a-ns")
    bucket_scoped = key_client("bucket:a-*")

    refused = bucket_scoped.get(f"{NS}/{namespace['id']}")
    in_scope = key_client("namespace:app-1/a-*").get(f"{NS}/{namespace['id']}")

    through_buckets = bucket_scoped.get("/api/v1/kv/buckets/a-ns")
    assert through_buckets.status_code == 403
    assert "a-ns" not in str(bucket_scoped.get("/api/v1/kv/buckets").json())
    assert refused.status_code == 403
    assert refused.json()["error"] == "this key may not access namespace:app-1/a-ns"
    assert "APP_" not in refused.content.decode() + through_buckets.content.decode()
    assert in_scope.status_code == 200


# --- Scopes of their own kind ---------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["namespace:app-1/other", "namespace:app-2/*", "namespace:prod-vault"])
@pytest.mark.parametrize(("route", "method", "path", "body"), NAMESPACE_CALLS, ids=CALL_IDS)
def test_a_key_scoped_to_other_namespaces_is_refused(vault, scope, route, method, path, body) -> None:
    response = call(key_client(scope), vault["id"], method, path, body)

    assert response.status_code == 403, response.content
    assert response.json()["error"] == "this key may not access namespace:app-1/prod-vault"


@pytest.mark.parametrize("scope", ["namespace:app-1/prod-vault", "namespace:app-1/*", "namespace:*/prod-*"])
@pytest.mark.parametrize(("route", "method", "path", "body"), NAMESPACE_CALLS, ids=CALL_IDS)
def test_a_scope_that_names_the_namespace_gets_in(vault, scope, route, method, path, body) -> None:
    response = call(key_client(scope), vault["id"], method, path, body)

    assert response.status_code in (200, 204), response.content


@pytest.mark.parametrize(("route", "method", "path", "body"), NAMESPACE_CALLS, ids=CALL_IDS)
def test_a_key_without_scopes_is_limited_by_its_permissions_alone(vault, route, method, path, body) -> None:
    assert call(key_client(), vault["id"], method, path, body).status_code in (200, 204)


def test_listings_show_only_the_namespaces_the_scopes_reach(make_namespace) -> None:
    for name, application in [("a-cfg", "app-1"), ("b-cfg", "app-1"), ("a-cfg2", "app-2")]:
        make_namespace(name, application=application)
    make_namespace("a-vault", secret=True)
    scoped = key_client("namespace:app-1/a-*")

    listed = scoped.get(NS)
    other_application = scoped.get(NS, {"applicationId": "app-2"})

    assert listed.status_code == 200
    assert [(n["applicationId"], n["name"]) for n in listed.json()["namespaces"]] == [
        ("app-1", "a-cfg"),
        ("app-1", "a-vault"),
    ]
    assert other_application.json() == {"namespaces": []}
    assert len(key_client().get(NS).json()["namespaces"]) == 4


# --- Creating, renaming, moving -----------------------------------------------------------------


def test_creating_is_decided_on_the_name_the_body_gives(admin) -> None:
    scoped = key_client("namespace:app-1/a-*")

    created = scoped.post(NS, {"name": "a-new", "applicationId": "app-1"}, format="json")
    other_name = scoped.post(NS, {"name": "b-new", "applicationId": "app-1", "isSecretNamespace": True}, format="json")
    other_application = scoped.post(NS, {"name": "a-new", "applicationId": "app-2"}, format="json")
    # Refused before the other values are looked at: a refused caller learns nothing from a 400.
    bad_ttl = scoped.post(NS, {"name": "b-new", "applicationId": "app-1", "defaultTtlSeconds": -1}, format="json")

    assert created.status_code == 201
    assert other_name.status_code == 403
    assert other_name.json()["error"] == "this key may not access namespace:app-1/b-new"
    assert other_application.status_code == 403
    assert bad_ttl.status_code == 403
    assert sorted(Namespace.objects.values_list("application_id", "name")) == [("app-1", "a-new")]
    refused = AuditEvent.objects.filter(success=False).order_by("id")
    assert [(r.action, r.reason) for r in refused][:2] == [
        ("WRITE", "this key may not access namespace:app-1/b-new"),
        ("WRITE", "this key may not access namespace:app-2/a-new"),
    ]


def test_renaming_or_moving_needs_the_old_and_the_new_name(make_namespace) -> None:
    # A secret namespace keeps its bucket when renamed: nothing but the names can decide.
    mine = make_namespace("a-vault", secret=True)
    theirs = make_namespace("b-vault", secret=True)
    scoped = key_client("namespace:app-1/a-*")

    to_their_name = scoped.put(f"{NS}/{mine['id']}", {"name": "b-vault2"}, format="json")
    to_their_application = scoped.put(f"{NS}/{mine['id']}", {"applicationId": "app-2"}, format="json")
    from_their_name = scoped.put(f"{NS}/{theirs['id']}", {"name": "a-mine-now"}, format="json")
    within = scoped.put(f"{NS}/{mine['id']}", {"name": "a-vault2"}, format="json")

    assert [to_their_name.status_code, to_their_application.status_code, from_their_name.status_code] == [403] * 3
    assert to_their_name.json()["error"] == "this key may not access namespace:app-1/b-vault2"
    assert to_their_application.json()["error"] == "this key may not access namespace:app-2/a-vault"
    assert from_their_name.json()["error"] == "this key may not access namespace:app-1/b-vault"
    assert within.status_code == 200 and within.json()["name"] == "a-vault2"
    assert Namespace.objects.get(pk=theirs["id"]).name == "b-vault"


def test_application_ids_hold_no_slash_so_a_scope_names_one_application(admin) -> None:
    response = admin.post(NS, {"name": "x", "applicationId": "app-1/evil"}, format="json")

    assert response.status_code == 400
    assert "applicationId" in response.json()["error"] and "/" in response.json()["error"]


# --- Order of the answers -------------------------------------------------------------------------


def test_a_missing_permission_is_403_before_an_unknown_id_is_404(vault) -> None:
    reader = key_client(role="reader")
    scoped = key_client("namespace:app-9/*")

    assert reader.delete(f"{NS}/{UNKNOWN}").status_code == 403
    assert reader.put(f"/api/v1/kv/{UNKNOWN}/entries/a", {"value": "v"}, format="json").status_code == 403
    assert reader.get(f"{NS}/{UNKNOWN}").status_code == 404
    # A scope is matched against a namespace's name, so an unknown id is 404 whatever the scopes.
    assert scoped.get(f"{NS}/{UNKNOWN}").status_code == 404
    assert scoped.get(f"{NS}/{vault['id']}").status_code == 403


def test_access_is_decided_before_the_body_is_read(vault) -> None:
    scoped = key_client("namespace:app-2/*")

    response = scoped.generic(
        "PUT", f"/api/v1/kv/{vault['id']}/entries/k", b"{not json", content_type="application/json"
    )

    assert response.status_code == 403


# --- Permissions, one at a time (declared per route) ---------------------------------------------

ALL = (NAMESPACE_READ, NAMESPACE_WRITE, NAMESPACE_DELETE, ENTRY_READ, ENTRY_WRITE, ENTRY_DELETE, SECRET_ROTATE)
NEEDED = {
    ("kv-namespace", "get"): NAMESPACE_READ,
    ("kv-namespace", "put"): NAMESPACE_WRITE,
    ("kv-namespace", "delete"): NAMESPACE_DELETE,
    ("kv-ns-entries", "get"): NAMESPACE_READ,
    ("kv-ns-entry", "get"): ENTRY_READ,
    ("kv-ns-entry", "put"): ENTRY_WRITE,
    ("kv-ns-entry", "delete"): ENTRY_DELETE,
    ("kv-ns-entry-rotate", "post"): SECRET_ROTATE,
    ("kv-ns-entry-versions", "get"): ENTRY_READ,
    # In a secret namespace; a plain one's rollback needs kv-entry:write (test_secrets.py).
    ("kv-ns-entry-rollback", "post"): SECRET_ROTATE,
    ("kv-ns-bulk-get", "post"): ENTRY_READ,
    ("kv-ns-bulk-set", "post"): ENTRY_WRITE,
    ("kv-ns-bulk-delete", "post"): ENTRY_DELETE,
}


@pytest.mark.parametrize(("route", "method", "path", "body"), NAMESPACE_CALLS, ids=CALL_IDS)
def test_each_route_needs_exactly_its_permission(vault, route, method, path, body) -> None:
    needed = NEEDED[route, method]
    without = key_client(role="none", permissions=tuple(set(ALL) - {needed}))
    only = key_client(role="none", permissions=(needed,))

    refused = call(without, vault["id"], method, path, body)
    allowed = call(only, vault["id"], method, path, body)

    assert refused.status_code == 403
    assert refused.json()["error"] == f"missing permission {needed}"
    assert allowed.status_code in (200, 204), allowed.content
    assert AuditEvent.objects.filter(success=False, reason__startswith="missing permission").count() == 1


@pytest.mark.parametrize(("method", "body", "needed"), [("get", None, NAMESPACE_READ), ("post", {}, NAMESPACE_WRITE)])
def test_listing_and_creating_need_their_permission(method, body, needed) -> None:
    without = key_client(role="none", permissions=tuple(set(ALL) - {needed}))

    response = getattr(without, method)(NS, body, format="json")

    assert (response.status_code, response.json()["error"]) == (403, f"missing permission {needed}")


# --- Refusals on record ----------------------------------------------------------------------


def test_refusals_before_the_handler_are_audited_as_the_operation_would_have_been(vault) -> None:
    bucket = Namespace.objects.get(pk=vault["id"]).bucket.name
    elsewhere = key_client("namespace:app-2/*")

    elsewhere.get(f"/api/v1/kv/{vault['id']}/entries/db/password")
    elsewhere.post(f"/api/v1/kv/{vault['id']}/entries/db/password/rotate", {"value": "x"}, format="json")
    elsewhere.delete(f"{NS}/{vault['id']}")
    key_client(role="reader").post(f"/api/v1/kv/{vault['id']}/bulk/delete", {"keys": ["a"]}, format="json")
    key_client().get(f"/api/v1/kv/{UNKNOWN}/entries/a")

    rows = AuditEvent.objects.filter(success=False).order_by("id")
    assert [(r.action, r.namespace, r.key_path, r.reason, r.actor_name) for r in rows] == [
        ("READ", bucket, "db/password", "this key may not access namespace:app-1/prod-vault", "scoped-key"),
        ("ROTATE", bucket, "db/password", "this key may not access namespace:app-1/prod-vault", "scoped-key"),
        ("DELETE", bucket, "", "this key may not access namespace:app-1/prod-vault", "scoped-key"),
        ("DELETE", "", "", "missing permission kv-entry:delete", "scoped-key"),
        ("READ", "", "a", f"namespace '{UNKNOWN}' not found", "scoped-key"),
    ]
    assert all(
        row.detail == f"namespace {row_id}" for row, row_id in zip(rows, [vault["id"]] * 4 + [UNKNOWN], strict=True)
    )


# --- Authentication ----------------------------------------------------------------------------


def test_without_a_key_or_with_a_bad_one_every_route_is_401(vault) -> None:
    anonymous = APIClient()
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer kv_not-a-key")

    for client in (anonymous, bad):
        assert client.get(NS).status_code == 401
        for _, method, path, body in NAMESPACE_CALLS:
            assert call(client, vault["id"], method, path, body).status_code == 401
    assert not AuditEvent.objects.filter(success=False).exists()


# --- Renamed between the decision and the operation -------------------------------------------


def test_an_operation_acts_only_on_the_namespace_access_was_decided_on(make_namespace) -> None:
    # Given a decision on app-1/a-vault, and a rename to b-vault before the handler runs
    namespace = make_namespace("a-vault", secret=True)
    decided = Resource("namespace", "app-1/a-vault")
    Namespace.objects.filter(pk=namespace["id"]).update(name="b-vault")
    system = audit_actor_system(name="tests")

    with pytest.raises(NamespaceChanged):
        entries.namespace_entry_list(namespace_id=namespace["id"], decided=decided, actor=system)
    with pytest.raises(NamespaceChanged):
        services.namespace_update(namespace_id=namespace["id"], name="a-again", decided=decided, actor=system)
    with pytest.raises(NamespaceChanged):
        services.namespace_delete(namespace_id=namespace["id"], decided=decided, actor=system)
    assert Namespace.objects.get(pk=namespace["id"]).name == "b-vault"
