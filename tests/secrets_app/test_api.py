"""The Ironflow secrets API: every call names an environment; info never holds a value."""

import pytest
from django.db import connection

from buckets.core import sealing, store
from buckets.models import Bucket, Entry
from kvsite.models import AuditEvent
from tests.secrets_app.conftest import flip_last_byte

from .conftest import PLAINTEXT

pytestmark = pytest.mark.django_db

INFO_FIELDS = {"name", "revision", "description", "created_at", "updated_at"}
BUCKET = "SYS_secrets_prod"


def create(client, name: str = "db/password", value: str = PLAINTEXT, **body):
    return client.post("/api/v1/secrets", {"name": name, "value": value, **body}, format="json")


def test_create_returns_info_without_the_value(env_client) -> None:
    response = create(env_client(), description="primary database")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == INFO_FIELDS
    assert body["name"] == "db/password"
    assert body["description"] == "primary database"
    assert body["revision"] >= 1
    assert PLAINTEXT not in response.content.decode()


def test_create_twice_is_a_conflict(env_client) -> None:
    client = env_client()
    create(client)

    response = create(client, value="other")

    assert response.status_code == 409
    assert response.json()["code"] == "already_exists"


def test_every_call_needs_the_environment_header(admin_client) -> None:
    calls = [
        admin_client.get("/api/v1/secrets"),
        admin_client.post("/api/v1/secrets", {"name": "a", "value": "b"}, format="json"),
        admin_client.get("/api/v1/secrets/a"),
        admin_client.put("/api/v1/secrets/a", {"value": "b"}, format="json"),
        admin_client.patch("/api/v1/secrets/a", {"description": "b"}, format="json"),
        admin_client.delete("/api/v1/secrets/a"),
        admin_client.get("/api/v1/secrets/a/value"),
    ]

    for response in calls:
        assert response.status_code == 400
        assert "X-Ironflow-Environment-ID" in response.json()["error"]


def test_an_invalid_environment_id_is_rejected(env_client) -> None:
    response = env_client(environment="../etc").get("/api/v1/secrets")

    assert response.status_code == 400


def test_list_and_info_show_metadata_only(env_client) -> None:
    client = env_client()
    create(client, "b/second", description="two")
    create(client, "a/first")

    listing = client.get("/api/v1/secrets")
    info = client.get("/api/v1/secrets/b/second")

    assert listing.status_code == 200
    assert [item["name"] for item in listing.json()] == ["a/first", "b/second"]
    assert all(set(item) == INFO_FIELDS for item in listing.json())
    assert info.status_code == 200
    assert info.json()["description"] == "two"
    assert PLAINTEXT not in listing.content.decode() + info.content.decode()


def test_an_environment_never_written_to_lists_nothing(env_client) -> None:
    response = env_client(environment="fresh").get("/api/v1/secrets")

    assert response.status_code == 200
    assert response.json() == []
    assert not Bucket.objects.filter(name="SYS_secrets_fresh").exists()


def test_reveal_returns_the_value_uncached(env_client) -> None:
    client = env_client()
    revision = create(client).json()["revision"]

    response = client.get("/api/v1/secrets/db/password/value")

    assert response.status_code == 200
    assert response.json() == {"name": "db/password", "value": PLAINTEXT, "revision": revision}
    assert response["Cache-Control"] == "no-store"


def test_put_writes_a_new_revision_and_keeps_created_at(env_client) -> None:
    client = env_client()
    created = create(client, description="d1").json()

    response = client.put("/api/v1/secrets/db/password", {"value": "rotated"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["revision"] > created["revision"]
    assert body["created_at"] == created["created_at"]
    assert body["description"] == "d1"
    assert client.get("/api/v1/secrets/db/password/value").json()["value"] == "rotated"
    history = store.entry_history(bucket=BUCKET, key="db/password")
    assert [entry.revision for entry in history] == [created["revision"], body["revision"]]


def test_put_of_a_missing_secret_is_not_found(env_client) -> None:
    response = env_client().put("/api/v1/secrets/nope", {"value": "x"}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_patch_changes_the_description_without_a_new_revision(env_client) -> None:
    client = env_client()
    created = create(client).json()

    response = client.patch("/api/v1/secrets/db/password", {"description": "new words"}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == "new words"
    assert response.json()["revision"] == created["revision"]


def test_patch_rename_keeps_the_history(env_client) -> None:
    client = env_client()
    first = create(client).json()
    second = client.put("/api/v1/secrets/db/password", {"value": "v2", "description": "kept"}, format="json").json()

    response = client.patch("/api/v1/secrets/db/password", {"name": "db/primary-password"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "db/primary-password"
    assert response.json()["revision"] == second["revision"]
    assert response.json()["description"] == "kept"
    assert response.json()["created_at"] == first["created_at"]
    assert client.get("/api/v1/secrets/db/password").status_code == 404
    assert client.get("/api/v1/secrets/db/primary-password/value").json()["value"] == "v2"
    history = store.entry_history(bucket=BUCKET, key="db/primary-password")
    assert [entry.revision for entry in history] == [first["revision"], second["revision"]]
    # The kept old version was re-sealed for the new name too: it still opens.
    assert sealing.value_open(envelope=history[0].value, bucket=BUCKET, key="db/primary-password") == PLAINTEXT.encode()


def test_rename_onto_an_existing_secret_is_a_conflict(env_client) -> None:
    client = env_client()
    create(client, "a")
    create(client, "b")

    response = client.patch("/api/v1/secrets/a", {"name": "b"}, format="json")

    assert response.status_code == 409
    assert client.get("/api/v1/secrets/a/value").json()["value"] == PLAINTEXT


def test_rename_onto_a_deleted_name_works(env_client) -> None:
    client = env_client()
    create(client, "a")
    create(client, "b", description="old b")
    client.delete("/api/v1/secrets/b")

    response = client.patch("/api/v1/secrets/a", {"name": "b"}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == ""
    assert client.get("/api/v1/secrets/b/value").json()["value"] == PLAINTEXT


def test_patch_needs_something_to_change(env_client) -> None:
    create(env_client())

    response = env_client().patch("/api/v1/secrets/db/password", {}, format="json")

    assert response.status_code == 400


def test_delete_removes_the_secret_and_its_sealed_history(env_client) -> None:
    client = env_client()
    create(client)
    client.put("/api/v1/secrets/db/password", {"value": "v2"}, format="json")

    response = client.delete("/api/v1/secrets/db/password")

    assert response.status_code == 204
    assert client.get("/api/v1/secrets/db/password").status_code == 404
    assert client.delete("/api/v1/secrets/db/password").status_code == 404
    assert list(Entry.objects.filter(bucket__name=BUCKET).values_list("operation", flat=True)) == ["purge"]
    assert create(client).status_code == 201


def test_environments_are_separate(env_client) -> None:
    create(env_client(environment="prod"), value="prod-value")
    create(env_client(environment="staging"), value="staging-value")

    prod = env_client(environment="prod").get("/api/v1/secrets/db/password/value")
    staging = env_client(environment="staging").get("/api/v1/secrets/db/password/value")

    assert prod.json()["value"] == "prod-value"
    assert staging.json()["value"] == "staging-value"
    assert env_client(environment="dev").get("/api/v1/secrets/db/password").status_code == 404


def test_names_follow_the_key_rules(env_client) -> None:
    response = create(env_client(), name="has space")

    assert response.status_code == 400


def test_an_oversized_value_is_refused(env_client) -> None:
    response = create(env_client(), value="x" * (64 * 1024 + 1))

    assert response.status_code in (400, 413)


def test_secret_buckets_are_unreachable_through_the_bucket_api(env_client, admin_client) -> None:
    create(env_client())

    listing = admin_client.get("/api/v1/kv/buckets")
    info = admin_client.get(f"/api/v1/kv/buckets/{BUCKET}")
    keys = admin_client.get(f"/api/v1/kv/buckets/{BUCKET}/keys")
    value = admin_client.get(f"/api/v1/kv/buckets/{BUCKET}/keys/db/password")
    delete = admin_client.delete(f"/api/v1/kv/buckets/{BUCKET}")

    assert listing.status_code == 200
    assert all(bucket["name"] != BUCKET for bucket in listing.json()["buckets"])
    assert [info.status_code, keys.status_code, value.status_code, delete.status_code] == [404, 404, 404, 404]
    assert Bucket.objects.filter(name=BUCKET).exists()


def test_a_tampered_value_is_a_clear_error_and_an_audit_record(env_client) -> None:
    client = env_client()
    create(client)
    entry = Entry.objects.get(bucket__name=BUCKET, key="db/password")
    Entry.objects.filter(pk=entry.pk).update(value=flip_last_byte(bytes(entry.value)))

    response = client.get("/api/v1/secrets/db/password/value")

    assert response.status_code == 500
    assert response.json() == {
        "error": "stored secret failed authentication (altered, or not sealed for this name)",
        "code": "data_loss",
    }
    assert "Traceback" not in response.content.decode()
    record = AuditEvent.objects.filter(action="REVEAL").latest("id")
    assert not record.success
    assert "failed authentication" in record.reason
    assert record.key_path == "db/password"


def test_swapped_ciphertexts_fail_through_the_api(env_client) -> None:
    client = env_client()
    create(client, "a", value="value-a")
    create(client, "b", value="value-b")
    a = Entry.objects.get(bucket__name=BUCKET, key="a")
    b = Entry.objects.get(bucket__name=BUCKET, key="b")
    Entry.objects.filter(pk=a.pk).update(value=bytes(b.value))

    response = client.get("/api/v1/secrets/a/value")

    assert response.status_code == 500
    assert response.json()["code"] == "data_loss"
    assert "value-b" not in response.content.decode()


def test_a_value_sealed_under_a_removed_key_says_so(env_client, settings) -> None:
    client = env_client()
    create(client)
    settings.KV_MASTER_KEYS = "other:" + "A" * 43 + "="

    response = client.get("/api/v1/secrets/db/password/value")

    assert response.status_code == 500
    assert "master key 'old'" in response.json()["error"]


# --- Permissions ---------------------------------------------------------------------------

OPERATIONS = {
    "list": lambda c: c.get("/api/v1/secrets"),
    "info": lambda c: c.get("/api/v1/secrets/db/password"),
    "reveal": lambda c: c.get("/api/v1/secrets/db/password/value"),
    "create": lambda c: c.post("/api/v1/secrets", {"name": "new", "value": "v"}, format="json"),
    "update": lambda c: c.put("/api/v1/secrets/db/password", {"value": "v"}, format="json"),
    "patch": lambda c: c.patch("/api/v1/secrets/db/password", {"description": "d"}, format="json"),
    "delete": lambda c: c.delete("/api/v1/secrets/db/password"),
}
ADMIN_STATUS = {"list": 200, "info": 200, "reveal": 200, "create": 201, "update": 200, "patch": 200, "delete": 204}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("role", ["admin", "writer", "reader"])
def test_permission_matrix(env_client, make_secret, role: str, operation: str) -> None:
    make_secret()

    response = OPERATIONS[operation](env_client(role))

    expected = ADMIN_STATUS[operation] if role == "admin" else 403
    assert response.status_code == expected, response.content
    if expected == 403:
        assert response.json()["code"] == "permission_denied"
        assert AuditEvent.objects.filter(success=False, reason__startswith="missing permission kv-secret").exists()


# Scopes that do not name environment prod as a secrets environment: other environments, and every
# other kind, whatever its glob would match of the internal bucket SYS_secrets_prod.
OTHER_SCOPES = [
    "secrets:staging",
    "secrets:prod-*",
    "bucket:*prod*",
    "bucket:*",
    "bucket:SYS_secrets_prod",
    "bucket:*_*",
    "namespace:*",
    "config:prod",
]


@pytest.mark.parametrize("scope", OTHER_SCOPES)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_scope_not_naming_the_environment_is_refused(env_client, make_secret, scope, operation) -> None:
    make_secret()

    response = OPERATIONS[operation](env_client(scopes=(scope,)))

    assert response.status_code == 403
    assert response.json() == {"error": "this key may not access secrets:prod", "code": "permission_denied"}
    assert PLAINTEXT not in response.content.decode()


@pytest.mark.parametrize("scope", ["secrets:prod", "secrets:pr*", "secrets:*"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_secrets_scope_naming_the_environment_gets_in(env_client, make_secret, scope, operation) -> None:
    make_secret()

    response = OPERATIONS[operation](env_client(scopes=("bucket:orders", scope)))

    assert response.status_code == ADMIN_STATUS[operation], response.content


def test_a_key_limited_to_prod_buckets_sees_none_and_reveals_no_secret(env_client, make_secret) -> None:
    # Given an admin key limited to *prod*: no bucket of the bucket API is named so
    make_secret("DB_PASS")
    bucket_scoped = env_client(scopes=("bucket:*prod*",))

    assert bucket_scoped.get("/api/v1/kv/buckets").json()["buckets"] == []
    assert bucket_scoped.get("/api/v1/secrets/DB_PASS/value").status_code == 403
    assert env_client(scopes=("secrets:prod",)).get("/api/v1/secrets/DB_PASS/value").json()["value"] == PLAINTEXT


def test_a_caller_without_secrets_permissions_is_refused_before_the_header_is_read(admin_client, client_for) -> None:
    # The permissions are decided before the environment is resolved: a refused caller learns nothing from a 400.
    reader = client_for("reader")

    assert reader.get("/api/v1/secrets").status_code == 403
    assert reader.get("/api/v1/secrets", HTTP_X_IRONFLOW_ENVIRONMENT_ID="../etc").status_code == 403
    assert admin_client.get("/api/v1/secrets").status_code == 400
    assert admin_client.get("/api/v1/secrets", HTTP_X_IRONFLOW_ENVIRONMENT_ID="../etc").status_code == 400


def test_requests_without_credentials_are_unauthenticated(client) -> None:
    response = client.get("/api/v1/secrets", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod")

    assert response.status_code == 401


def test_listing_does_not_decrypt(env_client, make_secret, monkeypatch) -> None:
    make_secret()

    def refuse(**kwargs):
        raise AssertionError("listing must not open values")

    monkeypatch.setattr(sealing, "value_open", refuse)

    assert env_client().get("/api/v1/secrets").status_code == 200
    assert env_client().get("/api/v1/secrets/db/password").status_code == 200
    assert connection.vendor in {"sqlite", "postgresql"}
