"""Who may call what: no key, bad key, each role, bucket-scoped keys, staff sessions."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from kvsite.access import apikeys
from kvsite.models import ApiKey

pytestmark = pytest.mark.django_db

API = "/api/v1/kv/buckets"

# (method, path, body) for every endpoint; the bucket "b" with key "k" exists.
READS = [
    ("get", API, None),
    ("get", f"{API}/b", None),
    ("get", f"{API}/b/keys", None),
    ("get", f"{API}/b/keys/k", None),
    ("get", f"{API}/b/keys/k/history", None),
]
KEY_WRITES = [
    ("put", f"{API}/b/keys/k", b"v"),
    ("delete", f"{API}/b/keys/k", None),
]
BUCKET_WRITES = [
    ("post", API, {"name": "new"}),
    ("delete", f"{API}/b", None),
]
EVERY_ENDPOINT = READS + KEY_WRITES + BUCKET_WRITES


@pytest.fixture(autouse=True)
def bucket_b(admin_client: APIClient, make_bucket) -> None:
    make_bucket("b")
    admin_client.generic("PUT", f"{API}/b/keys/k", b"v")


def call(client: APIClient, method: str, path: str, body):
    if method == "post":
        return client.post(path, body, format="json")
    if method == "put":
        return client.generic("PUT", path, body, content_type="application/octet-stream")
    return getattr(client, method)(path)


@pytest.mark.parametrize(("method", "path", "body"), EVERY_ENDPOINT)
def test_no_credentials_is_401(method, path, body) -> None:
    response = call(APIClient(), method, path, body)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer kvs_wrong", "Bearer ", "Basic abc", "Bearer nonsense", "Token x"])
def test_bad_credentials_are_401(header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(API)

    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path", "body"), KEY_WRITES + BUCKET_WRITES)
def test_reader_may_not_write(client_for, method, path, body) -> None:
    response = call(client_for("reader"), method, path, body)

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_reader_may_read(client_for, method, path, body) -> None:
    assert call(client_for("reader"), method, path, body).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), BUCKET_WRITES)
def test_writer_may_not_manage_buckets(client_for, method, path, body) -> None:
    assert call(client_for("writer"), method, path, body).status_code == 403


def test_writer_may_write_and_delete_keys(client_for) -> None:
    writer = client_for("writer")

    assert call(writer, "put", f"{API}/b/keys/k2", b"v").status_code == 200
    assert call(writer, "delete", f"{API}/b/keys/k2", None).status_code == 204


def test_bucket_scoped_key_sees_and_touches_only_its_buckets(client_for, make_bucket) -> None:
    make_bucket("orders-eu")
    scoped = client_for("admin", buckets="orders-*")

    assert [b["name"] for b in scoped.get(API).json()["buckets"]] == ["orders-eu"]
    assert call(scoped, "put", f"{API}/orders-eu/keys/k", b"v").status_code == 200
    assert call(scoped, "get", f"{API}/b/keys/k", None).status_code == 403
    assert call(scoped, "post", API, {"name": "elsewhere"}).status_code == 403
    assert call(scoped, "post", API, {"name": "orders-us"}).status_code == 201


def test_revoked_and_expired_keys_are_401(issue_token) -> None:
    revoked, expired = issue_token("admin", name="revoked"), issue_token("admin", name="expired")
    apikeys.apikey_revoke(api_key_id=ApiKey.objects.get(name="revoked").pk)
    ApiKey.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(seconds=1))

    for token in (revoked, expired):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert client.get(API).status_code == 401


def test_staff_session_may_call_the_api_with_csrf() -> None:
    staff = get_user_model().objects.create_user("staff", password="pw-staff-1234", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)

    assert client.get(f"{API}/b/keys/k").status_code == 200
    refused = client.generic("PUT", f"{API}/b/keys/k", b"x")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"

    client.get("/admin/")  # renders a form, which sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.generic("PUT", f"{API}/b/keys/k", b"x", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_non_staff_session_is_403() -> None:
    user = get_user_model().objects.create_user("plain", password="pw-plain-1234")
    client = APIClient()
    client.force_login(user)

    response = client.get(API)

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
