"""The Buckets page (``/``) and a bucket's page (``/buckets/<name>``).

Listing, search, create and delete; the key list with its cursor paging, wildcard
filter and live-watch wiring; creating a key.
"""

import re

from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.models import AuditEvent

from .conftest import page_text


def test_bucket_list_shows_only_user_buckets(staff_client, world):
    body = page_text(staff_client.get("/"))

    assert "orders" in body and "Order data" in body
    assert "SYS_" not in body
    assert "SYS_" not in page_text(staff_client.get("/?q=config"))
    assert "SYS_" not in page_text(staff_client.get("/?q=SYS"))
    # A SYS_ bucket cannot be opened by name either: the page only builds APP_ names.
    assert staff_client.get("/buckets/SYS_config_default").status_code == 404


def test_search_filters_the_bucket_list(staff_client, world):
    store.bucket_create(name=app_bucket("invoices"))

    body = page_text(staff_client.get("/?q=inv"))

    assert 'data-bucket="invoices"' in body
    assert 'data-bucket="orders"' not in body


def test_create_bucket_with_every_option(staff_client, db):
    response = staff_client.post(
        "/",
        {
            "name": "sessions",
            "description": "Web sessions",
            "ttl_seconds": 3600,
            "history": 5,
            "max_value_size": 2048,
            "max_bytes": 100000,
            "max_keys": 10,
            "key_format": "text",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/buckets/sessions"
    bucket = store.bucket_get(name=app_bucket("sessions"))
    assert (bucket.description, bucket.ttl_seconds, bucket.history) == ("Web sessions", 3600, 5)
    assert (bucket.max_value_size, bucket.max_bytes, bucket.max_keys, bucket.key_format) == (2048, 100000, 10, "text")
    assert AuditEvent.objects.filter(namespace="APP_sessions", detail="bucket created", actor_name="ops").exists()


def test_creating_a_bucket_that_exists_shows_the_error(staff_client, world):
    response = staff_client.post("/", {"name": "orders", "ttl_seconds": 0, "history": 1, "key_format": "nats"})

    assert response.status_code == 200
    assert "bucket &#x27;orders&#x27; already exists" in page_text(response)


def test_invalid_bucket_options_are_form_errors(staff_client, db):
    response = staff_client.post("/", {"name": "bad name!", "ttl_seconds": -1, "history": 99, "key_format": "nats"})

    assert response.status_code == 200
    body = page_text(response)
    assert body.count('class="errorlist') >= 3
    assert not store.bucket_list(prefix="APP_bad").exists()


def test_deleting_a_bucket_needs_its_name_typed(staff_client, world):
    wrong = staff_client.post("/buckets/orders", {"action": "delete_bucket", "confirm_name": "order"})
    assert wrong.status_code == 200
    assert "nothing was deleted" in page_text(wrong)
    assert store.bucket_get(name=app_bucket("orders"))

    right = staff_client.post("/buckets/orders", {"action": "delete_bucket", "confirm_name": "orders"})
    assert right.status_code == 302
    assert not store.bucket_list(prefix="APP_orders").exists()


def test_bucket_page_lists_keys_with_the_watch_wiring(staff_client, world):
    body = page_text(staff_client.get("/buckets/orders"))

    assert 'data-key="order.1"' in body
    assert 'data-watch-path="/api/v1/kv/buckets/orders/watch"' in body
    assert 'data-since="1"' in body


def test_key_list_pages_with_a_cursor_and_goes_back(staff_client, make_bucket):
    make_bucket("many")
    for number in range(250):
        store.entry_put(bucket=app_bucket("many"), key=f"k.{number:04d}", value=b"x")

    first = page_text(staff_client.get("/buckets/many"))
    assert first.count("<tr data-key=") == 100
    assert 'data-key="k.0099"' in first and 'data-key="k.0100"' not in first
    next_url = re.search(r'href="(\?[^"]*cursor=[^"]*)" hx-get="[^"]*"[^>]*rel="next"', first).group(1)

    second = page_text(staff_client.get("/buckets/many" + next_url.replace("&amp;", "&")))
    assert 'data-key="k.0100"' in second and 'data-key="k.0199"' in second
    assert 'data-key="k.0099"' not in second
    assert 'data-after="k.0099"' in second and 'data-until="k.0199"' in second
    previous_url = re.search(r'href="(\?[^"]*)" hx-get="[^"]*"[^>]*rel="prev"', second).group(1)

    back = page_text(staff_client.get("/buckets/many" + previous_url.replace("&amp;", "&")))
    assert 'data-key="k.0000"' in back and 'data-key="k.0100"' not in back


def test_key_filter_uses_wildcards_and_htmx_gets_only_the_list(staff_client, make_bucket):
    make_bucket("users")
    for key in ("user.1", "user.2", "group.1"):
        store.entry_put(bucket=app_bucket("users"), key=key, value=b"{}")

    response = staff_client.get("/buckets/users?filter=user.*", HTTP_HX_REQUEST="true")

    body = page_text(response)
    assert "<html" not in body
    assert 'data-key="user.1"' in body and 'data-key="user.2"' in body and 'data-key="group.1"' not in body
    assert 'data-watch-key="user.*"' in body


def test_a_bad_filter_is_a_message_not_an_error(staff_client, world):
    response = staff_client.get("/buckets/orders?filter=a.>.b")

    assert response.status_code == 200
    assert "may only be the last token" in page_text(response)


def test_create_key_from_the_bucket_page(staff_client, world):
    response = staff_client.post(
        "/buckets/orders", {"action": "create_key", "key": "order.2", "value": "hello", "encoding": "text"}
    )
    assert response.status_code == 302
    assert bytes(store.entry_get(bucket=app_bucket("orders"), key="order.2").value) == b"hello"

    again = staff_client.post(
        "/buckets/orders", {"action": "create_key", "key": "order.2", "value": "x", "encoding": "text"}
    )
    assert "already exists" in page_text(again)
