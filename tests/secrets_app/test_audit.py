"""Audit of secret operations: each one leaves one record, allowed or refused, with who, where and which secret.

The audit log itself (its transaction contract, append-only rows, admin and API) is
tested in ``tests/kvsite/access/test_audit.py``.
"""

import pytest

from kvsite.models import AuditEvent

from .conftest import PLAINTEXT

pytestmark = pytest.mark.django_db

BUCKET = "SYS_secrets_prod"


def last() -> AuditEvent:
    return AuditEvent.objects.latest("id")


def test_a_successful_reveal_records_actor_ip_request_id_and_entry(env_client) -> None:
    client = env_client()
    client.post("/api/v1/secrets", {"name": "db/password", "value": PLAINTEXT}, format="json")

    response = client.get("/api/v1/secrets/db/password/value", HTTP_X_REQUEST_ID="req-123", REMOTE_ADDR="10.1.2.3")

    record = last()
    assert response["X-Request-Id"] == "req-123"
    assert record.action == "REVEAL"
    assert record.success
    assert record.namespace == BUCKET
    assert record.key_path == "db/password"
    assert record.entry_id is not None
    assert (record.actor_type, record.actor_name) == ("api_key", "admin-key")
    assert record.actor_id.isdigit()
    assert record.client_ip == "10.1.2.3"
    assert record.request_id == "req-123"
    assert PLAINTEXT not in str(AuditEvent.objects.values_list())


def test_every_secret_operation_leaves_one_record(env_client) -> None:
    client = env_client()
    start = AuditEvent.objects.count()

    client.post("/api/v1/secrets", {"name": "a", "value": "v"}, format="json")
    client.get("/api/v1/secrets")
    client.get("/api/v1/secrets/a")
    client.put("/api/v1/secrets/a", {"value": "w"}, format="json")
    client.patch("/api/v1/secrets/a", {"name": "b"}, format="json")
    client.get("/api/v1/secrets/b/value")
    client.delete("/api/v1/secrets/b")

    actions = list(AuditEvent.objects.order_by("id").values_list("action", "key_path", "success")[start:])
    assert actions == [
        ("WRITE", "", True),  # the environment's bucket, created on first use
        ("WRITE", "a", True),
        ("READ", "", True),
        ("READ", "a", True),
        ("WRITE", "a", True),
        ("WRITE", "a", True),
        ("REVEAL", "b", True),
        ("DELETE", "b", True),
    ]
    assert AuditEvent.objects.filter(detail="renamed to b").exists()
    assert AuditEvent.objects.filter(namespace=BUCKET, detail="bucket created").count() == 1


def test_a_refused_reveal_is_recorded(env_client, make_secret) -> None:
    make_secret()

    response = env_client("reader").get("/api/v1/secrets/db/password/value")

    record = last()
    assert response.status_code == 403
    assert (record.action, record.success, record.actor_name) == ("REVEAL", False, "reader-key")
    assert (record.namespace, record.key_path) == (BUCKET, "db/password")
    assert record.reason == "missing permission kv-secret:read"


def test_a_refusal_by_scope_is_recorded_with_the_environment_tried(env_client, make_secret) -> None:
    make_secret()
    elsewhere = env_client(scopes=("secrets:staging",))

    elsewhere.get("/api/v1/secrets/db/password/value")
    reveal = last()
    elsewhere.patch("/api/v1/secrets/db/password", {"name": "taken"}, format="json")
    rename = last()
    elsewhere.get("/api/v1/secrets")
    listing = last()

    assert [(r.action, r.success, r.namespace, r.key_path) for r in (reveal, rename, listing)] == [
        ("REVEAL", False, BUCKET, "db/password"),
        ("WRITE", False, BUCKET, "db/password"),
        ("READ", False, BUCKET, ""),
    ]
    assert {r.reason for r in (reveal, rename, listing)} == {"this key may not access secrets:prod"}


def test_not_found_and_conflicts_are_recorded(env_client, admin_client, make_secret) -> None:
    make_secret()
    client = env_client()

    client.get("/api/v1/secrets/missing/value")
    missing = last()
    client.post("/api/v1/secrets", {"name": "db/password", "value": "x"}, format="json")
    conflict = last()
    client.get("/api/v1/secrets")
    admin_client.get("/api/v1/secrets/x")

    assert (missing.action, missing.success, missing.key_path) == ("REVEAL", False, "missing")
    assert "not found" in missing.reason
    assert (conflict.action, conflict.success) == ("WRITE", False)
    assert "already exists" in conflict.reason
    assert "X-Ironflow-Environment-ID" in last().reason
