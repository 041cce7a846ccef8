"""The audit log (``kvsite/access/audit.py``, ``audit_api.py``, the ``AuditEvent`` model and its admin).

A change commits with its record or not at all, a refusal is recorded after the
rollback, rows are append-only, and ``GET /api/v1/audit`` reads them. Secret
operations drive it (what each one records is in ``tests/secrets_app/test_audit.py``);
bucket creation and deletion are the other audited operations.
"""

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site as admin_site
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from buckets.models import Bucket, Entry
from kvsite.access import apikeys, audit
from kvsite.models import AuditEvent
from secrets_app import services
from tests.fixtures.secrets import PLAINTEXT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("master_keys")]

BUCKET = "SYS_secrets_prod"


def last() -> AuditEvent:
    return AuditEvent.objects.latest("id")


# --- A change and its record commit together ------------------------------------------------


def test_a_refused_change_rolls_back_but_its_record_stays(make_secret, system) -> None:
    make_secret()
    before = Bucket.objects.get(name=BUCKET).last_revision

    with pytest.raises(services.SecretExists):
        services.secret_create(environment="prod", name="db/password", value="x", actor=system)

    assert Bucket.objects.get(name=BUCKET).last_revision == before
    assert not last().success


def test_a_change_without_its_audit_record_does_not_commit(system, monkeypatch) -> None:
    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(audit, "audit_record", broken)
        with pytest.raises(RuntimeError):
            services.secret_create(environment="prod", name="db/password", value=PLAINTEXT, actor=system)

    assert not Bucket.objects.filter(name=BUCKET).exists()
    assert not Entry.objects.filter(key="db/password").exists()


def test_audit_records_inside_an_outer_transaction_commit_with_it(system) -> None:
    with transaction.atomic():
        services.secret_create(environment="prod", name="a", value="v", actor=system)
        assert AuditEvent.objects.filter(key_path="a", success=True).exists()


# --- Bucket creation and deletion -----------------------------------------------------------


def test_bucket_creation_and_deletion_are_audited(admin_client, client_for) -> None:
    admin_client.post("/api/v1/kv/buckets", {"name": "orders"}, format="json")
    created = last()
    admin_client.delete("/api/v1/kv/buckets/orders")
    deleted = last()
    client_for("reader").post("/api/v1/kv/buckets", {"name": "sneaky"}, format="json")
    refused = last()
    admin_client.delete("/api/v1/kv/buckets/orders")
    missing = last()

    assert (created.action, created.namespace, created.success, created.detail) == (
        "WRITE",
        "APP_orders",
        True,
        "bucket created",
    )
    assert (deleted.action, deleted.namespace, deleted.success) == ("DELETE", "APP_orders", True)
    # Refused before its body is read (the route declares kv-namespace:write): the refusal names no bucket.
    assert (refused.action, refused.namespace, refused.success, refused.actor_name) == (
        "WRITE",
        "",
        False,
        "reader-key",
    )
    assert refused.reason == "missing permission kv-namespace:write"
    assert (missing.action, missing.success) == ("DELETE", False)
    assert not Bucket.objects.filter(name="APP_sneaky").exists()


# --- Append-only ----------------------------------------------------------------------------


def test_audit_rows_cannot_be_changed_or_deleted(make_secret) -> None:
    make_secret()
    record = last()

    record.reason = "rewritten history"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=record.pk).update(success=False)
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=record.pk).reason == ""


def test_the_admin_shows_audit_rows_read_only(django_user_model) -> None:
    model_admin = admin_site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = django_user_model.objects.create_superuser(username="root", password="x")

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_the_admin_pages_render(client, django_user_model, make_secret) -> None:
    make_secret()
    client.force_login(django_user_model.objects.create_superuser(username="root", password="x"))

    listing = client.get("/admin/kvsite/auditevent/")
    detail = client.get(f"/admin/kvsite/auditevent/{last().pk}/change/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert b"Save" not in detail.content


# --- GET /api/v1/audit ----------------------------------------------------------------------


def test_only_admins_read_the_audit_log(client_for, admin_client) -> None:
    assert admin_client.get("/api/v1/audit").status_code == 200
    assert client_for("writer").get("/api/v1/audit").status_code == 403
    assert client_for("reader").get("/api/v1/audit").status_code == 403


def audit_client(role: str, *, scopes: tuple[str, ...] = (), permissions: tuple[str, ...] = ()) -> APIClient:
    issued = apikeys.apikey_create(name="auditor", role=role, scopes=scopes, permissions=permissions)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    return client


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:*prod*", "secrets:*", "config:*", "metrics"])
def test_a_scoped_key_without_an_audit_scope_reads_no_audit_log(make_secret, scope: str) -> None:
    # The log holds every tenant's rows: a key limited to some of them must not read them all.
    make_secret()

    response = audit_client("admin", scopes=(scope,)).get("/api/v1/audit")

    assert response.status_code == 403
    assert "may not access audit" in response.json()["error"]


def test_an_audit_scope_or_no_scope_reads_the_audit_log() -> None:
    assert audit_client("admin", scopes=("audit", "bucket:a-*")).get("/api/v1/audit").status_code == 200
    assert audit_client("none", permissions=("kv-audit:read",)).get("/api/v1/audit").status_code == 200
    assert audit_client("writer", scopes=("audit",)).get("/api/v1/audit").status_code == 403


def test_the_audit_log_is_newest_first_and_cursor_paginated(admin_client, make_secret) -> None:
    for index in range(5):
        make_secret(f"s{index}")

    first = admin_client.get("/api/v1/audit", {"limit": 2, "namespace": BUCKET}).json()
    second = admin_client.get("/api/v1/audit", {"limit": 2, "namespace": BUCKET, "cursor": first["next_cursor"]}).json()
    rest = admin_client.get("/api/v1/audit", {"limit": 10, "namespace": BUCKET, "cursor": second["next_cursor"]}).json()

    ids = [event["id"] for page in (first, second, rest) for event in page["events"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids)) == 6  # the bucket's creation and five secrets
    assert [event["key_path"] for event in first["events"]] == ["s4", "s3"]
    assert "next_cursor" not in rest


def test_the_audit_log_filters(admin_client, env_client, make_secret) -> None:
    make_secret()
    env_client("reader").get("/api/v1/secrets/db/password/value")
    env_client().get("/api/v1/secrets/db/password/value")
    now = timezone.now()

    reveals = admin_client.get("/api/v1/audit", {"action": "reveal"}).json()["events"]
    by_reader = admin_client.get("/api/v1/audit", {"actor": "reader-key"}).json()["events"]
    # The secret's rows (the clients' keys were issued, and recorded, too: by the system, under "apikeys").
    by_system = admin_client.get("/api/v1/audit", {"actor": "system:", "namespace": BUCKET}).json()["events"]
    future = admin_client.get("/api/v1/audit", {"since": (now + timedelta(hours=1)).isoformat()}).json()
    past = admin_client.get("/api/v1/audit", {"until": "2000-01-01T00:00:00Z"}).json()
    window = admin_client.get(
        "/api/v1/audit",
        {
            "since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(hours=1)).isoformat(),
            "namespace": BUCKET,
        },
    ).json()

    assert [(event["actor_name"], event["success"]) for event in reveals] == [
        ("admin-key", True),
        ("reader-key", False),
    ]
    assert [event["action"] for event in by_reader] == ["REVEAL"]
    assert {event["actor_name"] for event in by_system} == {"tests"}
    assert future["events"] == [] and past["events"] == []
    assert window["count"] == 4


@pytest.mark.parametrize(
    "query", [{"action": "EXPLODE"}, {"since": "yesterday"}, {"cursor": "!!"}, {"limit": "0"}, {"limit": "x"}]
)
def test_bad_audit_queries_are_invalid_arguments(admin_client, query) -> None:
    response = admin_client.get("/api/v1/audit", query)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"


def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent(admin_client) -> None:
    plain = admin_client.get("/api/v1/audit")
    hostile = admin_client.get("/api/v1/audit", HTTP_X_REQUEST_ID="a\nforged log line")

    assert len(plain["X-Request-Id"]) == 32
    assert hostile["X-Request-Id"] != "a\nforged log line"
