"""The namespaces bulk API (get, set, delete of up to 1000 entries), built on buckets.core.bulk."""

import base64
from collections.abc import Iterator

import pytest
from django.db.models import Sum
from django.test import override_settings

from buckets.core import store
from buckets.models import Bucket, Entry
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS="bk:" + base64.b64encode(bytes(range(32))).decode()):
        yield


def recount(name: str) -> tuple[int, int, int]:
    rows = Entry.objects.filter(bucket__name=name)
    live = rows.filter(is_latest=True, operation=store.PUT).count()
    return rows.count(), rows.aggregate(total=Sum("size"))["total"] or 0, live


def counters(name: str) -> tuple[int, int, int]:
    row = Bucket.objects.get(name=name)
    return row.values_count, row.bytes_total, row.live_keys


@pytest.fixture
def admin(client_for):
    return client_for("admin")


@pytest.fixture
def namespace(admin) -> dict:
    return admin.post("/api/v1/kv/namespaces", {"name": "bulkns", "applicationId": "a"}, format="json").json()


def items(count: int, *, start: int = 0) -> list[dict]:
    return [{"keyPath": f"cfg/k{i}", "value": i, "valueType": "NUMBER"} for i in range(start, start + count)]


def bulk_url(namespace: dict, operation: str) -> str:
    return f"/api/v1/kv/{namespace['id']}/bulk/{operation}"


def test_bulk_set_writes_all_and_bulk_get_reads_them(admin, namespace) -> None:
    response = admin.post(bulk_url(namespace, "set"), {"entries": items(3)}, format="json")
    got = admin.post(bulk_url(namespace, "get"), {"keys": ["cfg/k2", "nope", "cfg/k0"]}, format="json")

    assert response.status_code == 200
    assert [(e["keyPath"], e["version"], e["value"]) for e in response.json()["entries"]] == [
        ("cfg/k0", 1, 0),
        ("cfg/k1", 1, 1),
        ("cfg/k2", 1, 2),
    ]
    assert [e["keyPath"] for e in got.json()["entries"]] == ["cfg/k2", "cfg/k0"]
    assert got.json()["missing"] == ["nope"]
    assert counters("APP_bulkns") == recount("APP_bulkns")


def test_bulk_set_with_one_bad_item_writes_nothing(admin, namespace) -> None:
    bad = [*items(3), {"keyPath": "cfg/bad", "value": "text", "valueType": "NUMBER"}, {"keyPath": "x"}]

    response = admin.post(bulk_url(namespace, "set"), {"entries": bad}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_argument"
    assert [(e["index"], e["keyPath"]) for e in body["errors"]] == [(3, "cfg/bad"), (4, "x")]
    assert "value" in body["errors"][0]["error"]
    assert Entry.objects.filter(bucket__name="APP_bulkns").count() == 0
    assert AuditEvent.objects.filter(namespace="APP_bulkns", success=False, action="WRITE").count() == 1


def test_bulk_set_compare_and_swap_per_item(admin, namespace) -> None:
    admin.post(bulk_url(namespace, "set"), {"entries": items(2)}, format="json")
    second = [{**item, "version": 1} for item in items(2)]
    admin.post(bulk_url(namespace, "set"), {"entries": second}, format="json")

    stale = admin.post(bulk_url(namespace, "set"), {"entries": [{**items(1)[0], "version": 1}]}, format="json")

    assert stale.status_code == 409
    assert stale.json()["code"] == "aborted"
    assert stale.json()["errors"][0]["currentVersion"] == 2


def test_bulk_delete_is_all_or_nothing(admin, namespace) -> None:
    admin.post(bulk_url(namespace, "set"), {"entries": items(3)}, format="json")

    missing = admin.post(bulk_url(namespace, "delete"), {"keys": ["cfg/k0", "cfg/nope"]}, format="json")
    assert missing.status_code == 404
    assert missing.json()["errors"] == [
        {"index": 1, "keyPath": "cfg/nope", "error": "entry 'cfg/nope' not found", "code": "not_found"}
    ]
    assert admin.get(f"/api/v1/kv/{namespace['id']}/entries/cfg/k0").status_code == 200

    deleted = admin.post(bulk_url(namespace, "delete"), {"keys": ["cfg/k0", "cfg/k1"]}, format="json")
    assert deleted.json() == {"deleted": 2}
    assert [e["keyPath"] for e in admin.get(f"/api/v1/kv/{namespace['id']}/entries").json()["entries"]] == ["cfg/k2"]
    assert counters("APP_bulkns") == recount("APP_bulkns")


def test_bulk_limits(admin, namespace) -> None:
    too_many = admin.post(bulk_url(namespace, "set"), {"entries": items(1001)}, format="json")
    empty = admin.post(bulk_url(namespace, "get"), {"keys": []}, format="json")
    keys = admin.post(bulk_url(namespace, "delete"), {"keys": [f"k{i}" for i in range(1001)]}, format="json")

    assert [too_many.status_code, empty.status_code, keys.status_code] == [400, 400, 400]
    assert "at most 1000" in too_many.json()["error"]


def test_a_bulk_set_of_1000_entries_is_one_transaction(admin, namespace) -> None:
    response = admin.post(bulk_url(namespace, "set"), {"entries": items(1000)}, format="json")

    assert response.status_code == 200
    assert Bucket.objects.get(name="APP_bulkns").last_revision == 1000
    assert counters("APP_bulkns") == recount("APP_bulkns") == (1000, counters("APP_bulkns")[1], 1000)
    audits = AuditEvent.objects.filter(namespace="APP_bulkns", action="WRITE", detail__startswith="bulk set")
    assert audits.count() == 1


def test_bulk_set_in_a_secret_namespace_seals_every_value(admin) -> None:
    namespace = admin.post(
        "/api/v1/kv/namespaces", {"name": "v", "applicationId": "a", "isSecretNamespace": True}, format="json"
    ).json()
    secrets = [{"keyPath": f"s{i}", "value": f"CANARY-{i}-x", "valueType": "STRING"} for i in range(5)]

    response = admin.post(bulk_url(namespace, "set"), {"entries": secrets}, format="json")

    assert response.status_code == 200
    assert b"CANARY" not in b"".join(bytes(e.value) for e in Entry.objects.all())
    got = admin.post(bulk_url(namespace, "get"), {"keys": ["s3"]}, format="json").json()
    assert got["entries"][0]["value"] == "CANARY-3-x"
