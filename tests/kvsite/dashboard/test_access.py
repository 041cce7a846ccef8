"""Access to the dashboard: who sees which page, signing in and out, CSRF, the error pages.

Anonymous visitors are sent to the login page, signed-in users who are not staff get
the 403 page, staff see every page.
"""

import pytest
from django.test import Client

from buckets.core import store

from .conftest import page_text

PAGES = [
    "/",
    "/buckets/orders",
    "/buckets/orders/keys/order.1",
    "/config",
    "/config/default/flags",
    "/secrets",
    "/secrets/prod/db/password",
    "/audit",
    "/api-keys",
]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, world, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", PAGES)
def test_signed_in_users_who_are_not_staff_get_the_403_page(member_client, world, path):
    response = member_client.get(path)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "not a staff account" in page_text(response)


@pytest.mark.parametrize("path", PAGES)
def test_staff_users_see_every_page(staff_client, world, path):
    response = staff_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    body = page_text(response)
    assert "<main" in body and 'name="csrfmiddlewaretoken"' in body


def test_a_non_staff_user_cannot_post_either(member_client, world):
    response = member_client.post("/", {"name": "sneaky"})

    assert response.status_code == 403
    assert not store.bucket_list(prefix="APP_sneaky").exists()


def test_login_page_signs_staff_in_and_logout_is_a_post(client, staff):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page_text(page)

    signed_in = client.post("/login", {"username": "ops", "password": "pw-ops-123456"})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    assert client.get("/").status_code == 200

    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_posts_without_a_csrf_token_are_refused(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post("/", {"name": "nocsrf", "ttl_seconds": 0, "history": 1, "key_format": "nats"})

    assert response.status_code == 403
    assert not store.bucket_list(prefix="APP_nocsrf").exists()


def test_dashboard_404s_are_html_and_api_404s_stay_json(staff_client, world):
    page = staff_client.get("/no/such/page")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")

    missing_bucket = staff_client.get("/buckets/nope")
    assert missing_bucket.status_code == 404
    assert "bucket &#x27;nope&#x27; not found" in page_text(missing_bucket)

    api = staff_client.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert api.json() == {"error": "not found", "code": "not_found"}
