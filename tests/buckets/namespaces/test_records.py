"""Stored records (``buckets/namespaces/records.py``): one written by other means is a clear 409, never a 500."""

import base64
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from buckets.core import sealing, store
from buckets.models import Namespace
from kvsite.models import AuditEvent

pytestmark = pytest.mark.django_db

NS = "/api/v1/kv/namespaces"
GOOD = b'"id":"ab12","type":"STRING","value":"v","version":1,"createdAt":"2024-05-01T10:00:00Z"'


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS="rk:" + base64.b64encode(bytes(range(32))).decode()):
        yield


@pytest.fixture
def admin(client_for) -> APIClient:
    return client_for("admin")


def namespace(admin: APIClient, *, secret: bool = False) -> tuple[str, str]:
    """A new namespace: (its API base URL, its bucket)."""
    body = {"name": "vault" if secret else "cfg", "applicationId": "app", "isSecretNamespace": secret}
    created = admin.post(NS, body, format="json").json()
    return f"/api/v1/kv/{created['id']}", Namespace.objects.get(pk=created["id"]).bucket.name


def record(*fields: bytes, without: bytes = b"") -> bytes:
    """The good record's JSON with ``fields`` added (a later one wins) and the field ``without`` left out."""
    kept = [part for part in GOOD.split(b",") if not (without and part.startswith(b'"' + without + b'"'))]
    return b'{"kvns":1,' + b",".join([*kept, *fields]) + b"}"


MALFORMED = {
    "no id": (record(without=b"id"), "id"),
    "id not a string": (record(b'"id":7'), "id"),
    "unknown type": (record(b'"type":"DATE"'), "type"),
    "no value": (record(without=b"value"), "value"),
    "value not of its type": (record(b'"type":"NUMBER"'), "value"),
    "no version": (record(without=b"version"), "version"),
    "version a string": (record(b'"version":"one"'), "version"),
    "version zero": (record(b'"version":0'), "version"),
    "version of a billion digits": (record(b'"version":1e999999999'), "version"),
    "version infinite": (record(b'"version":1e400'), "version"),
    "version a fraction": (record(b'"version":1.5'), "version"),
    "no createdAt": (record(without=b"createdAt"), "createdAt"),
    "createdAt not a time": (record(b'"createdAt":"yesterday"'), "createdAt"),
    "createdAt a number": (record(b'"createdAt":5'), "createdAt"),
    "createdAt without a zone": (record(b'"createdAt":"2024-05-01T10:00:00"'), "createdAt"),
    "metadata a list": (record(b'"metadata":[1]'), "metadata"),
    "changedBy a number": (record(b'"changedBy":7'), "changedBy"),
    "reason an object": (record(b'"reason":{}'), "reason"),
    "ttlSeconds negative": (record(b'"ttlSeconds":-5'), "ttlSeconds"),
    "ttlSeconds a string": (record(b'"ttlSeconds":"60"'), "ttlSeconds"),
    "ttlSeconds past the maximum": (record(b'"ttlSeconds":1e30'), "ttlSeconds"),
}


@pytest.mark.parametrize(("raw", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_record_is_a_409_naming_the_key_on_every_read_and_write(admin, raw, field) -> None:
    # Given a record written by other means (the bucket API, an import) that claims the record format
    base, bucket = namespace(admin)
    store.entry_put(bucket=bucket, key="bad", value=raw)

    started = time.monotonic()
    answers = {
        "get": admin.get(f"{base}/entries/bad"),
        "list": admin.get(f"{base}/entries"),
        "versions": admin.get(f"{base}/entries/bad/versions"),
        "bulk get": admin.post(f"{base}/bulk/get", {"keys": ["bad"]}, format="json"),
        "put": admin.put(f"{base}/entries/bad", {"value": "v", "valueType": "STRING"}, format="json"),
        "bulk set": admin.post(
            f"{base}/bulk/set", {"entries": [{"keyPath": "bad", "value": "v", "valueType": "STRING"}]}, format="json"
        ),
        "rollback": admin.post(f"{base}/entries/bad/rollback", {"version": 1}, format="json"),
    }

    assert time.monotonic() - started < 5
    for name, response in answers.items():
        assert response.status_code == 409, (name, response.content)
        body = response.json()
        assert body["code"] == "failed_precondition", name
        if name == "bulk set":
            assert body["errors"][0]["keyPath"] == "bad"
            body = body["errors"][0]
        assert body["error"].startswith(f"entry 'bad' holds a malformed record ({field}"), (name, body)
    # Deleting it needs no reading: that is the way out the message points to.
    assert admin.delete(f"{base}/entries/bad").status_code == 204
    assert admin.put(f"{base}/entries/bad", {"value": "v", "valueType": "STRING"}, format="json").status_code == 200


def test_a_malformed_sealed_record_is_a_409_too_and_on_record(admin) -> None:
    base, bucket = namespace(admin, secret=True)
    sealed = sealing.value_seal(plaintext=record(b'"version":"one"'), bucket=bucket, key="bad")
    store.entry_put(bucket=bucket, key="bad", value=sealed)

    response = admin.get(f"{base}/entries/bad")

    assert response.status_code == 409
    assert response.json()["error"].startswith("entry 'bad' holds a malformed record (version")
    row = AuditEvent.objects.filter(success=False).latest("id")
    assert (row.action, row.namespace, row.key_path) == ("READ", bucket, "bad")


@pytest.mark.parametrize(
    "raw",
    [b"plain text", b'{"kvns":2,"anything":true}', b'{"other":"json"}', b"[1,2]", b"\xff\xfe", b"[" * 100_000],
)
def test_a_value_that_claims_no_record_reads_as_version_1_of_itself(admin, raw) -> None:
    base, bucket = namespace(admin)
    store.entry_put(bucket=bucket, key="foreign", value=raw)

    response = admin.get(f"{base}/entries/foreign")

    assert response.status_code == 200
    assert (response.json()["version"], response.json()["valueType"]) == (
        1,
        "BINARY" if raw == b"\xff\xfe" else "STRING",
    )
