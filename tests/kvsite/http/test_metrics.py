"""/metrics: Prometheus text for admins, counting requests, writes and conflicts."""

import pytest
from rest_framework.test import APIClient

from kvsite.access import apikeys

pytestmark = pytest.mark.django_db


def sample(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_metrics_count_writes_conflicts_and_requests(
    admin_client: APIClient, make_bucket, django_capture_on_commit_callbacks
) -> None:
    make_bucket("m")
    before = admin_client.get("/metrics").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.generic("PUT", "/api/v1/kv/buckets/m/keys/k", b"1")
    admin_client.generic("PUT", "/api/v1/kv/buckets/m/keys/k", b"2", HTTP_IF_NONE_MATCH="*")
    after = admin_client.get("/metrics")

    assert after.status_code == 200 and after["Content-Type"].startswith("text/plain")
    text = after.content.decode()
    assert (
        sample(text, 'kvsite_kv_writes_total{operation="put"}')
        == sample(before, 'kvsite_kv_writes_total{operation="put"}') + 1
    )
    assert sample(text, "kvsite_kv_cas_conflicts_total") == sample(before, "kvsite_kv_cas_conflicts_total") + 1
    assert 'route="api/v1/kv/buckets/<str:bucket>/keys/<path:key>"' in text


def test_metrics_are_for_admins_only(client_for) -> None:
    assert APIClient().get("/metrics").status_code == 401
    assert client_for("reader").get("/metrics").status_code == 403


def test_metrics_can_be_public(settings) -> None:
    settings.KV_METRICS_PUBLIC = True

    assert APIClient().get("/metrics").status_code == 200


def test_watch_metrics_are_exported(admin_client: APIClient) -> None:
    text = admin_client.get("/metrics").content.decode()

    for name in (
        "kvsite_watchers_connected",
        "kvsite_watch_events_delivered_total",
        "kvsite_watch_events_dropped_total",
    ):
        assert name in text


def metrics_client(role: str, *, scopes: tuple[str, ...] = (), permissions: tuple[str, ...] = ()) -> APIClient:
    issued = apikeys.apikey_create(name="scraper", role=role, scopes=scopes, permissions=permissions)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    return client


@pytest.mark.parametrize("scope", ["bucket:*", "config:*", "audit"])
def test_a_key_scoped_to_other_kinds_reads_no_metrics(scope: str) -> None:
    response = metrics_client("admin", scopes=(scope,)).get("/metrics")

    assert response.status_code == 403
    assert "may not access metrics" in response.json()["error"]


def test_metrics_read_alone_or_a_metrics_scope_reads_metrics() -> None:
    assert metrics_client("none", permissions=("metrics:read",)).get("/metrics").status_code == 200
    assert metrics_client("admin", scopes=("metrics", "bucket:a-*")).get("/metrics").status_code == 200
    assert metrics_client("writer", scopes=("metrics",)).get("/metrics").status_code == 403


def test_public_metrics_need_no_scope(settings) -> None:
    settings.KV_METRICS_PUBLIC = True

    assert metrics_client("reader", scopes=("bucket:a",)).get("/metrics").status_code == 200
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer kvs_wrong")
    assert bad.get("/metrics").status_code == 401
