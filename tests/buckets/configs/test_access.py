"""Who reaches which config documents: ``config:<environment>``, decided before the handler runs.

A key's scopes are matched against the environment a request names (``X-Ironflow-Environment-ID``
or ``?environment=``, default ``default``), and only scopes of kind ``config`` reach one:
a bucket scope, whatever its glob, opens no config documents.
"""

import json

import pytest
from rest_framework.test import APIClient

from buckets.configs import services as configs
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/config"
SYSTEM = audit_actor_system(name="tests")

# (method, path, body) of every config route, on the document "flags".
READS = [
    ("get", API, None),
    ("get", f"{API}/flags", None),
    ("get", f"{API}/flags/history", None),
]
WRITES = [
    ("post", f"{API}/flags", {"beta": False}),
    ("patch", f"{API}/flags", {"beta": False}),
    ("delete", f"{API}/flags", None),
    ("post", f"{API}/flags/rollback", {"revision": 1}),
]
EVERY_ROUTE = READS + WRITES


def key_client(role: str, *scopes: str, environment: str | None = None) -> APIClient:
    token = apikeys.apikey_create(name=f"{role}-scoped", role=role, scopes=list(scopes)).token
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if environment:
        headers["HTTP_X_IRONFLOW_ENVIRONMENT_ID"] = environment
    client.credentials(**headers)
    return client


def call(client: APIClient, method: str, path: str, body, **extra):
    if body is None:
        return getattr(client, method)(path, **extra)
    return client.generic(method.upper(), path, json.dumps(body).encode(), content_type="application/json", **extra)


@pytest.fixture(autouse=True)
def documents() -> None:
    """``flags`` in the environments ``prod`` and ``default``."""
    for environment in ("prod", "default"):
        configs.config_set(environment=environment, name="flags", data={"beta": True}, actor=SYSTEM)


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:*prod*", "bucket:*_*", "bucket:*config*", "bucket:SYS_*"])
@pytest.mark.parametrize(("method", "path", "body"), EVERY_ROUTE)
def test_a_scope_of_another_kind_opens_no_config(scope: str, method: str, path: str, body) -> None:
    # The reported hole: a bucket scope was never checked here, so it reached every environment.
    client = key_client("writer", scope, environment="prod")

    response = call(client, method, path, body)

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), EVERY_ROUTE)
def test_a_key_scoped_to_another_environment_is_refused(method: str, path: str, body) -> None:
    staging = key_client("writer", "config:staging")

    by_header = call(staging, method, path, body, HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")
    by_query = call(staging, method, f"{path}?environment=prod", body)
    by_default = call(staging, method, path, body)

    assert (by_header.status_code, by_query.status_code, by_default.status_code) == (403, 403, 403)
    assert "may not access config:prod" in by_header.json()["error"]
    assert "may not access config:default" in by_default.json()["error"]
    assert configs.config_get(environment="prod", name="flags").revision == 1


@pytest.mark.parametrize("scope", ["config:prod", "config:pr*", "config:*"])
def test_a_config_scope_that_matches_reaches_the_environment(scope: str) -> None:
    client = key_client("writer", "bucket:a-*", scope, environment="prod")

    assert [doc["name"] for doc in client.get(API).json()["configs"]] == ["flags"]
    assert client.get(f"{API}/flags").json()["data"] == {"beta": True}
    assert client.patch(f"{API}/flags", {"alpha": 1}, format="json").json() == {"name": "flags", "revision": 2}
    assert client.post(f"{API}/flags/rollback", {"revision": 1}, format="json").status_code == 200
    assert client.get(f"{API}/flags/history").status_code == 200
    assert client.delete(f"{API}/flags").status_code == 204
    assert configs.config_get(environment="default", name="flags").data == {"beta": True}


def test_the_query_names_the_environment_too() -> None:
    client = key_client("reader", "config:prod")

    assert client.get(f"{API}/flags?environment=prod").status_code == 200
    assert client.get(f"{API}/flags").status_code == 403


def test_header_and_query_naming_different_environments_is_a_400() -> None:
    client = key_client("reader")

    response = client.get(f"{API}/flags?environment=default", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")
    same = client.get(f"{API}/flags?environment=prod", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")

    assert response.status_code == 400 and response.json()["code"] == "invalid_argument"
    assert same.status_code == 200


def test_a_reader_scope_still_needs_config_write_to_write() -> None:
    reader = key_client("reader", "config:prod", environment="prod")

    assert reader.get(f"{API}/flags").status_code == 200
    response = reader.post(f"{API}/flags", {"beta": False}, format="json")
    assert response.status_code == 403 and "missing permission config:write" in response.json()["error"]


def test_no_scopes_reach_every_environment() -> None:
    client = key_client("writer")

    assert client.get(f"{API}/flags", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod").status_code == 200
    assert client.get(f"{API}/flags").status_code == 200
    assert client.post(f"{API}/other", {"a": 1}, format="json", HTTP_X_IRONFLOW_ENVIRONMENT_ID="qa").status_code == 200


def test_a_refused_caller_learns_nothing_from_its_body() -> None:
    # Access is decided before the body is read: a malformed document is the caller's 403, not a 400.
    client = key_client("writer", "config:staging", environment="prod")

    response = client.generic("POST", f"{API}/flags", b"{not json", content_type="application/json")

    assert response.status_code == 403


@pytest.mark.parametrize("header", [None, "Bearer kvs_wrong"])
@pytest.mark.parametrize(("method", "path", "body"), EVERY_ROUTE)
def test_without_a_valid_key_every_route_is_401(header: str | None, method: str, path: str, body) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = call(client, method, path, body)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


# --- Changes are audited ------------------------------------------------------------------


def rows(**filters) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(namespace__startswith="config:", **filters)
        .order_by("id")
        .values_list("action", "namespace", "key_path", "success", "actor_name", "detail")
    )


def test_every_change_is_audited_under_the_apis_names() -> None:
    # Given a writer limited to prod...
    client = key_client("writer", "config:prod", environment="prod")
    start = AuditEvent.objects.count()

    # ...when it writes, patches, rolls back and deletes, and reads in between...
    client.post(f"{API}/flags", {"beta": False}, format="json")
    client.patch(f"{API}/flags", {"alpha": 1}, format="json")
    client.get(f"{API}/flags")
    client.get(f"{API}/flags/history")
    client.post(f"{API}/flags/rollback", {"revision": 1}, format="json")
    client.delete(f"{API}/flags")

    # ...then each change has one row, named as the API names it; reads have none.
    events = AuditEvent.objects.order_by("id")[start:]
    assert [(e.action, e.namespace, e.key_path, e.success, e.actor_name, e.detail) for e in events] == [
        ("WRITE", "config:prod", "flags", True, "writer-scoped", "whole document"),
        ("WRITE", "config:prod", "flags", True, "writer-scoped", "merge patch"),
        ("ROLLBACK", "config:prod", "flags", True, "writer-scoped", "to the data of revision 1"),
        ("DELETE", "config:prod", "flags", True, "writer-scoped", ""),
    ]
    assert all(event.entry_id is not None and event.actor_type == "api_key" for event in events)
    assert AuditEvent.objects.filter(namespace__startswith="SYS_config").count() == 0


def test_refused_and_failed_changes_are_recorded_too() -> None:
    staging = key_client("writer", "config:staging", environment="prod")
    writer = key_client("writer", environment="prod")

    staging.patch(f"{API}/flags", {"beta": False}, format="json")
    staging.post(f"{API}/flags/rollback", {"revision": 1}, format="json")
    writer.post(f"{API}/flags", {"beta": False}, format="json", HTTP_IF_MATCH="7")
    writer.patch(f"{API}/missing", {"beta": False}, format="json")
    key_client("writer").delete(f"{API}/flags?environment=qa")
    staging.get(f"{API}/flags")  # a refused read is not a change

    refused = rows(success=False)
    assert [(action, namespace, key, name) for action, namespace, key, _, name, _ in refused] == [
        ("WRITE", "config:prod", "flags", "writer-scoped"),
        ("ROLLBACK", "config:prod", "flags", "writer-scoped"),
        ("WRITE", "config:prod", "flags", "writer-scoped"),
        ("WRITE", "config:prod", "missing", "writer-scoped"),
        ("DELETE", "config:qa", "flags", "writer-scoped"),
    ]
    reasons = list(AuditEvent.objects.filter(success=False).order_by("id").values_list("reason", flat=True))
    assert "this key may not access config:prod" in reasons[0]
    assert configs.config_get(environment="prod", name="flags").revision == 1


def test_a_caller_without_the_permission_learns_nothing_from_the_environment_it_names() -> None:
    # The permission comes first: a reader changing a malformed environment is a 403, not the 400 that
    # would tell it the name is malformed; the refusal is recorded without a name that cannot exist.
    reader = key_client("reader")

    malformed = reader.patch(f"{API}/flags", {"beta": False}, format="json", HTTP_X_IRONFLOW_ENVIRONMENT_ID="a b")
    well_formed = reader.patch(f"{API}/flags", {"beta": False}, format="json", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")

    assert (malformed.status_code, well_formed.status_code) == (403, 403)
    assert malformed.json()["error"] == well_formed.json()["error"] == "missing permission config:write"
    refused = AuditEvent.objects.filter(success=False, actor_name="reader-scoped").order_by("id")
    assert [(row.action, row.namespace) for row in refused] == [("WRITE", "config"), ("WRITE", "config:prod")]


def test_a_change_does_not_commit_without_its_audit_row(monkeypatch) -> None:
    from kvsite.access import audit

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(audit, "audit_record", broken)
    monkeypatch.setattr(configs, "audit_record", broken)

    with pytest.raises(RuntimeError):
        configs.config_set(environment="prod", name="flags", data={"lost": True}, actor=SYSTEM)
    with pytest.raises(RuntimeError):
        configs.config_patch(environment="prod", name="flags", patch={"lost": True}, actor=SYSTEM)

    assert configs.config_get(environment="prod", name="flags").data == {"beta": True}
