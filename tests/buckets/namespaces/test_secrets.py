"""Secret namespaces: sealed records, rotate / versions / rollback, values only with kv-secret:read; permissions."""

import base64
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from buckets.core import rotation, sealing
from buckets.core.exceptions import PermissionDenied
from buckets.models import Entry, Namespace
from buckets.namespaces import entries
from buckets.namespaces import services as namespaces
from buckets.namespaces import versions as history
from buckets.namespaces.entries import WithheldEntry
from buckets.namespaces.exceptions import EntryNotFound, VersionNotFound
from kvsite.access.audit import AuditActor, AuditedRotation, audit_actor_system
from kvsite.access.guard import scopes_parse
from kvsite.access.permissions import (
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
    SECRET_READ,
    SECRET_ROTATE,
    Principal,
)
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY_OLD = "old:" + base64.b64encode(bytes(range(32))).decode()
KEY_NEW = "new:" + base64.b64encode(bytes(range(100, 132))).decode()
CANARY = "hunter2-NS-SECRET-CANARY-9b1e"
SYSTEM = audit_actor_system(name="tests")
NS = "/api/v1/kv/namespaces"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS=KEY_OLD):
        yield


def actor_with(*permissions: str, scopes: tuple[str, ...] = ()) -> AuditActor:
    principal = Principal(
        kind="api_key", id=42, name="k", permissions=frozenset(permissions), scopes=scopes_parse(list(scopes))
    )
    return AuditActor(type="api_key", id="42", name="k", principal=principal)


@pytest.fixture
def vault() -> Namespace:
    return namespaces.namespace_create(name="vault", application_id="app-1", is_secret=True, actor=SYSTEM)


@pytest.fixture
def plain() -> Namespace:
    return namespaces.namespace_create(name="cfg", application_id="app-1", actor=SYSTEM)


def write(namespace: Namespace, key_path: str = "db/password", value=CANARY, value_type="STRING", **options):
    return entries.namespace_entry_put(
        namespace_id=namespace.id, key_path=key_path, value=value, value_type=value_type, actor=SYSTEM, **options
    )


def all_stored_bytes() -> bytes:
    return b"".join(bytes(row.value) for row in Entry.objects.all())


# --- Sealing ----------------------------------------------------------------------------------


def test_secret_values_are_sealed_records_bound_to_bucket_and_key(vault) -> None:
    write(vault, metadata={"rotatedBy": "ops"})

    stored = Entry.objects.get(key="db/password")
    assert CANARY.encode() not in all_stored_bytes()
    assert b"rotatedBy" not in all_stored_bytes()
    plaintext = sealing.value_open(envelope=bytes(stored.value), bucket=vault.bucket.name, key="db/password")
    assert CANARY.encode() in plaintext
    with pytest.raises(Exception, match="authentication"):
        sealing.value_open(envelope=bytes(stored.value), bucket=vault.bucket.name, key="other")


def test_secret_values_are_absent_from_the_database_on_disk(vault, postgres_only) -> None:
    write(vault)
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM buckets_entry")
        assert all(CANARY.encode() not in bytes(row[0]) for row in cursor.fetchall())


def test_master_key_rotation_reseals_namespace_entries(vault) -> None:
    write(vault)

    with override_settings(KV_MASTER_KEYS=f"{KEY_NEW},{KEY_OLD}"):
        report = rotation.master_key_rotate(journal=AuditedRotation(SYSTEM))
        assert report.failures == []
        assert report.resealed >= 1
        with override_settings(KV_MASTER_KEYS=KEY_NEW):
            read = entries.namespace_entry_get(namespace_id=vault.id, key_path="db/password", actor=SYSTEM)
    assert read.value == CANARY


# --- Values only with kv-secret:read -------------------------------------------------------------


def test_secret_values_need_secret_read(vault) -> None:
    write(vault)
    reader = actor_with(ENTRY_READ, NAMESPACE_READ)
    revealer = actor_with(ENTRY_READ, NAMESPACE_READ, SECRET_READ)

    hidden = entries.namespace_entry_get(namespace_id=vault.id, key_path="db/password", actor=reader)
    shown = entries.namespace_entry_get(namespace_id=vault.id, key_path="db/password", actor=revealer)

    assert hidden == WithheldEntry(key_path="db/password")
    assert CANARY not in repr(hidden) and CANARY not in repr(shown)
    assert (shown.value, shown.value_shown, shown.version) == (CANARY, True, 1)


def test_secret_values_are_absent_from_listings_even_with_secret_read(vault) -> None:
    write(vault)
    listed = entries.namespace_entry_list(namespace_id=vault.id, actor=SYSTEM)

    assert [(e.key_path, e.value_shown, e.value) for e in listed.entries] == [("db/password", False, None)]


def test_secret_api_responses_without_secret_read_carry_no_value(client_for) -> None:
    admin, writer = client_for("admin"), client_for("writer")
    namespace = admin.post(
        "/api/v1/kv/namespaces", {"name": "vault", "applicationId": "a", "isSecretNamespace": True}, format="json"
    ).json()
    base = f"/api/v1/kv/{namespace['id']}"

    written = writer.put(f"{base}/entries/db/password", {"value": CANARY, "valueType": "STRING"}, format="json")
    responses = [
        written,
        writer.get(f"{base}/entries/db/password"),
        writer.get(f"{base}/entries"),
        writer.get(f"{base}/entries/db/password/versions"),
        writer.post(f"{base}/bulk/get", {"keys": ["db/password"]}, format="json"),
        admin.get(f"{base}/entries"),
    ]

    assert [r.status_code for r in responses] == [200] * 6
    for response in responses:
        assert CANARY not in response.content.decode()
    assert "value" not in written.json()
    assert admin.get(f"{base}/entries/db/password").json()["value"] == CANARY
    assert admin.get(f"{base}/entries/db/password/versions").json()["versions"][0]["value"] == CANARY


def test_secret_reads_are_audited_with_what_was_shown(vault) -> None:
    write(vault)
    entries.namespace_entry_get(namespace_id=vault.id, key_path="db/password", actor=actor_with(ENTRY_READ))
    entries.namespace_entry_get(
        namespace_id=vault.id, key_path="db/password", actor=actor_with(ENTRY_READ, SECRET_READ)
    )

    reads = AuditEvent.objects.filter(action="READ", key_path="db/password").order_by("id")
    assert [(r.detail, r.success, r.namespace) for r in reads] == [
        ("value withheld", True, vault.bucket.name),
        ("value revealed", True, vault.bucket.name),
    ]
    assert not AuditEvent.objects.filter(detail__contains=CANARY).exists()


# --- Without kv-secret:read, key paths only; values never stored by a cache ----------------------


@pytest.fixture
def secret_api(client_for) -> dict:
    """A secret namespace (with a description) and a plain one, written over HTTP by an admin."""
    admin = client_for("admin")
    vault = admin.post(
        NS, {"name": "vault", "applicationId": "a", "isSecretNamespace": True, "description": "prod DB"}, format="json"
    ).json()
    plain = admin.post(NS, {"name": "cfg", "applicationId": "a", "description": "settings"}, format="json").json()
    for namespace in (vault, plain):
        entry = {"value": CANARY, "valueType": "STRING", "metadata": {"owner": "ops"}}
        assert admin.put(f"/api/v1/kv/{namespace['id']}/entries/db/password", entry, format="json").status_code == 200
    return {"admin": admin, "vault": vault, "plain": plain}


def test_without_secret_read_a_secret_namespace_shows_key_paths_and_nothing_else(secret_api, client_for) -> None:
    writer = client_for("writer")  # kv-namespace:read, kv-entry:read/write/delete; no kv-secret:read
    base = f"/api/v1/kv/{secret_api['vault']['id']}"
    entry = {"value": "v", "valueType": "STRING", "metadata": {"m": 1}}

    got = writer.get(f"{base}/entries/db/password")
    listed = writer.get(f"{base}/entries")
    versions = writer.get(f"{base}/entries/db/password/versions")
    bulk_got = writer.post(f"{base}/bulk/get", {"keys": ["db/password", "absent"]}, format="json")
    written = writer.put(f"{base}/entries/other", entry, format="json")
    bulk_set = writer.post(f"{base}/bulk/set", {"entries": [{"keyPath": "x", **entry}]}, format="json")
    described = writer.get(f"{NS}/{secret_api['vault']['id']}")
    namespaces_listed = {n["name"]: n for n in writer.get(NS).json()["namespaces"]}

    assert got.json() == {"keyPath": "db/password"}
    assert listed.json() == {"entries": [{"keyPath": "db/password"}], "nextCursor": None}
    assert versions.json() == {"keyPath": "db/password"}
    assert bulk_got.json() == {"entries": [{"keyPath": "db/password"}], "missing": ["absent"]}
    assert written.json() == {"keyPath": "other"}
    assert bulk_set.json() == {"entries": [{"keyPath": "x"}]}
    assert "description" not in described.json() and described.json()["name"] == "vault"
    assert "description" not in namespaces_listed["vault"]
    assert namespaces_listed["cfg"]["description"] == "settings"
    assert writer.get(f"/api/v1/kv/{secret_api['plain']['id']}/entries/db/password").json()["metadata"] == {
        "owner": "ops"
    }


def test_with_secret_read_a_secret_namespace_shows_everything_but_listed_values(secret_api) -> None:
    admin, base = secret_api["admin"], f"/api/v1/kv/{secret_api['vault']['id']}"

    got = admin.get(f"{base}/entries/db/password").json()
    listed = admin.get(f"{base}/entries").json()["entries"]

    assert (got["value"], got["metadata"], got["version"]) == (CANARY, {"owner": "ops"}, 1)
    assert got["changedBy"].startswith("api_key:")
    assert [(e["keyPath"], e["metadata"], "value" in e) for e in listed] == [("db/password", {"owner": "ops"}, False)]
    assert admin.get(f"{NS}/{secret_api['vault']['id']}").json()["description"] == "prod DB"


def test_responses_carrying_a_secret_value_are_never_stored(secret_api, client_for) -> None:
    admin = secret_api["admin"]
    vault, plain = (f"/api/v1/kv/{secret_api[name]['id']}" for name in ("vault", "plain"))
    entry = {"value": CANARY, "valueType": "STRING"}

    carrying = {
        "get": admin.get(f"{vault}/entries/db/password"),
        "versions": admin.get(f"{vault}/entries/db/password/versions"),
        "bulk get": admin.post(f"{vault}/bulk/get", {"keys": ["db/password"]}, format="json"),
        "put": admin.put(f"{vault}/entries/db/password", entry, format="json"),
        "bulk set": admin.post(f"{vault}/bulk/set", {"entries": [{"keyPath": "k", **entry}]}, format="json"),
        "rotate": admin.post(f"{vault}/entries/db/password/rotate", {"value": CANARY}, format="json"),
        "rollback": admin.post(f"{vault}/entries/db/password/rollback", {"version": 1}, format="json"),
    }
    not_carrying = {
        "plain get": admin.get(f"{plain}/entries/db/password"),
        "secret listing": admin.get(f"{vault}/entries"),
        "withheld get": client_for("writer").get(f"{vault}/entries/db/password"),
    }

    assert {name: (r.status_code, r.get("Cache-Control")) for name, r in carrying.items()} == {
        name: (200, "no-store") for name in carrying
    }
    assert all(CANARY in response.content.decode() for response in carrying.values())
    assert {name: r.get("Cache-Control") for name, r in not_carrying.items()} == dict.fromkeys(not_carrying)


# --- Rotate, versions, rollback ---------------------------------------------------------------


def test_rotate_writes_a_new_version_with_reason_rotation(vault) -> None:
    write(vault, metadata={"owner": "db"}, ttl_seconds=3600)
    rotator = actor_with(SECRET_ROTATE)

    rotated = history.namespace_entry_rotate(namespace_id=vault.id, key_path="db/password", value="new", actor=rotator)

    assert rotated == WithheldEntry(key_path="db/password")  # the rotator holds no kv-secret:read
    current = entries.namespace_entry_get(namespace_id=vault.id, key_path="db/password", actor=SYSTEM)
    assert (current.version, current.reason, current.changed_by) == (2, "rotation", "api_key:42")
    assert current.metadata == {"owner": "db"}
    assert current.expires_at is not None
    assert current.value == "new"
    audit = AuditEvent.objects.filter(action="ROTATE").get()
    assert (audit.success, audit.key_path, audit.actor_id) == (True, "db/password", "42")


def test_rotate_keeps_the_value_type(vault) -> None:
    write(vault, key_path="port", value=5432, value_type="NUMBER")

    with pytest.raises(Exception, match="valueType NUMBER"):
        history.namespace_entry_rotate(namespace_id=vault.id, key_path="port", value="x", actor=SYSTEM)


def test_rotate_is_for_secret_namespaces_and_existing_entries(vault, plain) -> None:
    write(plain, key_path="k", value="v")

    with pytest.raises(Exception, match="secret namespaces"):
        history.namespace_entry_rotate(namespace_id=plain.id, key_path="k", value="x", actor=SYSTEM)
    with pytest.raises(EntryNotFound):
        history.namespace_entry_rotate(namespace_id=vault.id, key_path="absent", value="x", actor=SYSTEM)
    assert AuditEvent.objects.filter(action="ROTATE", success=False).count() == 2


def test_versions_list_number_actor_reason_and_time_newest_first(vault) -> None:
    write(vault, value="v1")
    write(vault, value="v2")
    history.namespace_entry_rotate(
        namespace_id=vault.id, key_path="db/password", value="v3", actor=actor_with(SECRET_ROTATE)
    )
    history.namespace_entry_rollback(
        namespace_id=vault.id, key_path="db/password", version=1, actor=actor_with(SECRET_ROTATE)
    )

    versions = history.namespace_entry_versions(namespace_id=vault.id, key_path="db/password", actor=SYSTEM)

    assert [(v.version, v.reason, v.changed_by, v.value) for v in versions] == [
        (4, "rollback", "api_key:42", "v1"),
        (3, "rotation", "api_key:42", "v3"),
        (2, "update", "system:tests", "v2"),
        (1, "update", "system:tests", "v1"),
    ]
    assert all(v.created_at is not None for v in versions)


def test_versions_without_secret_read_are_withheld(vault) -> None:
    write(vault)
    versions = history.namespace_entry_versions(
        namespace_id=vault.id, key_path="db/password", actor=actor_with(ENTRY_READ)
    )

    assert versions is None
    with pytest.raises(EntryNotFound):
        history.namespace_entry_versions(namespace_id=vault.id, key_path="absent", actor=actor_with(ENTRY_READ))


def test_secret_namespaces_keep_64_versions(vault) -> None:
    for index in range(70):
        write(vault, value=f"v{index}")

    versions = history.namespace_entry_versions(namespace_id=vault.id, key_path="db/password", actor=SYSTEM)

    assert len(versions) == 64
    assert (versions[0].version, versions[-1].version) == (70, 7)


def test_rollback_to_a_version_no_longer_kept_is_404(vault) -> None:
    write(vault)

    with pytest.raises(VersionNotFound):
        history.namespace_entry_rollback(namespace_id=vault.id, key_path="db/password", version=5, actor=SYSTEM)
    assert AuditEvent.objects.filter(action="ROLLBACK", success=False).exists()


def test_rollback_over_http(client_for) -> None:
    admin = client_for("admin")
    namespace = admin.post("/api/v1/kv/namespaces", {"name": "cfg", "applicationId": "a"}, format="json").json()
    url = f"/api/v1/kv/{namespace['id']}/entries/feature/flag"
    admin.put(url, {"value": True, "valueType": "BOOLEAN"}, format="json")
    admin.put(url, {"value": False, "valueType": "BOOLEAN"}, format="json")

    response = admin.post(f"{url}/rollback", {"version": 1}, format="json")
    missing = admin.post(f"{url}/rollback", {"version": 9}, format="json")
    bad = admin.post(f"{url}/rollback", {"version": "one"}, format="json")

    assert response.status_code == 200
    assert (response.json()["version"], response.json()["value"], response.json()["reason"]) == (3, True, "rollback")
    assert missing.status_code == 404 and bad.status_code == 400


def test_rotate_over_http(client_for) -> None:
    admin = client_for("admin")
    namespace = admin.post(
        "/api/v1/kv/namespaces", {"name": "v", "applicationId": "a", "isSecretNamespace": True}, format="json"
    ).json()
    url = f"/api/v1/kv/{namespace['id']}/entries/api-key"
    admin.put(url, {"value": "one", "valueType": "STRING"}, format="json")

    rotated = admin.post(f"{url}/rotate", {"value": "two"}, format="json")
    writer_try = client_for("writer").post(f"{url}/rotate", {"value": "three"}, format="json")

    assert rotated.status_code == 200
    assert (rotated.json()["version"], rotated.json()["reason"], rotated.json()["value"]) == (2, "rotation", "two")
    assert writer_try.status_code == 403


# --- Decided in the services: per namespace kind, per row, on a body's name ---------------------
# (What each route needs is declared and tested over HTTP: tests/buckets/namespaces/test_access.py.)


def test_rollback_in_a_plain_namespace_needs_entry_write(plain) -> None:
    write(plain, key_path="k", value="v")

    with pytest.raises(PermissionDenied):
        history.namespace_entry_rollback(
            namespace_id=plain.id, key_path="k", version=1, actor=actor_with(SECRET_ROTATE)
        )
    rolled = history.namespace_entry_rollback(
        namespace_id=plain.id, key_path="k", version=1, actor=actor_with(ENTRY_WRITE)
    )
    assert rolled.version == 2


def test_plain_listings_show_values_only_with_entry_read(plain) -> None:
    write(plain, key_path="k", value="v")

    without = entries.namespace_entry_list(namespace_id=plain.id, actor=actor_with(NAMESPACE_READ))
    with_read = entries.namespace_entry_list(namespace_id=plain.id, actor=actor_with(NAMESPACE_READ, ENTRY_READ))

    assert [e.value for e in without.entries] == [None]
    assert [e.value for e in with_read.entries] == ["v"]


def test_creating_is_decided_on_the_namespace_it_names(vault) -> None:
    for scope in ("namespace:a/y*", "bucket:APP_x", "bucket:*"):
        with pytest.raises(PermissionDenied):
            namespaces.namespace_create(
                name="x", application_id="a", actor=actor_with(NAMESPACE_WRITE, scopes=(scope,))
            )
    created = namespaces.namespace_create(
        name="x", application_id="a", actor=actor_with(NAMESPACE_WRITE, scopes=("namespace:a/x",))
    )
    assert created.bucket.name == "APP_x"


def test_secret_namespaces_keep_their_entries_in_sealed_buckets(vault, plain) -> None:
    assert (vault.bucket.sealed, plain.bucket.sealed) == (True, False)
