"""The login page (``/login``): failed sign-ins throttled per username and per client address, every sign-in audited.

Each test gets a cache of its own (the counters live in Django's cache), so no test
inherits another's failures.
"""

import time
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client, override_settings

from kvsite.models import AuditEvent

from .conftest import page_text

PASSWORD = "pw-ops-123456"
WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def own_cache() -> Iterator[None]:
    cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"login-{uuid.uuid4()}"}
    with override_settings(CACHES={"default": cache}):
        yield


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post("/login", {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_five_failures_for_a_username_refuse_it_for_a_minute_the_right_password_included(client, staff):
    # Given five wrong passwords for one username
    for _ in range(5):
        failed = sign_in(client, "ops", WRONG)
        assert failed.status_code == 200 and "correct username and password" in page_text(failed)

    # When the right one comes, from anywhere
    refused = sign_in(Client(REMOTE_ADDR="10.0.0.9"), "ops", PASSWORD)

    # Then it is refused too, with a 429 that says what happened and how long to wait
    assert refused.status_code == 429
    body = page_text(refused)
    assert "Too many failed sign-in attempts for this username" in body
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert f"Wait {refused['Retry-After']} seconds" in body
    assert 'value="ops"' in body and WRONG not in body
    assert not signed_in(client)
    # and a username in other letters is the same username
    assert sign_in(client, "OPS", PASSWORD).status_code == 429


def test_once_the_window_has_passed_the_right_password_signs_in(client, staff, settings):
    settings.KV_LOGIN_WINDOW_SECONDS = 1
    for _ in range(5):
        sign_in(client, "ops", WRONG)
    assert sign_in(client, "ops", PASSWORD).status_code == 429

    time.sleep(1.2)

    assert sign_in(client, "ops", PASSWORD).status_code == 302
    assert signed_in(client)


def test_twenty_failures_from_one_address_refuse_it_for_every_username(client, staff):
    for attempt in range(20):
        sign_in(client, f"guess-{attempt % 4}", WRONG)  # never five for one username

    refused = sign_in(client, "ops", PASSWORD)

    assert refused.status_code == 429
    assert "Too many failed sign-in attempts from your network address" in page_text(refused)
    assert not signed_in(client)
    # Another address is not held back by this one's failures.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert sign_in(other, "ops", PASSWORD).status_code == 302


def test_a_sign_in_clears_the_usernames_failures_but_not_the_addresss(client, staff, settings):
    settings.KV_LOGIN_FAILURES_PER_IP = 9
    for _ in range(4):
        sign_in(client, "ops", WRONG)
    assert sign_in(client, "ops", PASSWORD).status_code == 302
    client.post("/logout")
    for _ in range(4):
        sign_in(client, "ops", WRONG)

    assert sign_in(client, "ops", PASSWORD).status_code == 302
    client.post("/logout")
    sign_in(client, "ops", WRONG)  # the ninth failure from this address
    assert sign_in(client, "ops", PASSWORD).status_code == 429


def test_limits_follow_the_settings_and_zero_turns_one_off(client, staff, settings):
    settings.KV_LOGIN_FAILURES_PER_USERNAME = 0
    settings.KV_LOGIN_FAILURES_PER_IP = 3
    for _ in range(2):
        sign_in(client, "ops", WRONG)
    assert sign_in(client, "ops", PASSWORD).status_code == 302

    settings.KV_LOGIN_FAILURES_PER_IP = 0
    for _ in range(30):
        sign_in(Client(), "ops", WRONG)
    assert sign_in(Client(), "ops", PASSWORD).status_code == 302


def test_an_empty_form_is_not_a_failed_sign_in(client, staff):
    for _ in range(6):
        assert client.post("/login", {"username": "ops", "password": ""}).status_code == 200

    assert sign_in(client, "ops", PASSWORD).status_code == 302


def test_every_sign_in_is_audited_with_username_and_address_never_the_password(client, staff):
    sign_in(client, "ops", PASSWORD)
    client.post("/logout")
    for _ in range(5):
        sign_in(client, "ops", WRONG, HTTP_X_REQUEST_ID="trace-login")
    sign_in(client, "ops", PASSWORD)

    events = list(AuditEvent.objects.filter(action="LOGIN").order_by("id"))
    assert [event.success for event in events] == [True, False, False, False, False, False, False]
    success, failure, throttled = events[0], events[1], events[-1]
    assert (success.actor_type, success.actor_id, success.actor_name) == ("user", str(staff.pk), "ops")
    assert (failure.actor_type, failure.actor_id, failure.actor_name) == ("anonymous", "", "ops")
    assert failure.reason == "wrong username or password" and failure.request_id == "trace-login"
    assert "too many failed sign-in attempts" in throttled.reason
    assert {event.client_ip for event in events} == {"127.0.0.1"}
    for event in events:
        row = " ".join(str(value) for value in vars(event).values())
        assert PASSWORD not in row and WRONG not in row


def test_a_cache_that_fails_leaves_sign_in_open_and_says_so(client, staff, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    for name in ("get_many", "add", "incr", "delete_many"):
        monkeypatch.setattr(LocMemCache, name, broken)

    assert sign_in(client, "ops", WRONG).status_code == 200
    assert sign_in(client, "ops", PASSWORD).status_code == 302
    assert any("sign-in throttle" in record.getMessage() for record in caplog.records)


def test_the_admin_login_is_the_throttled_form(client, staff):
    for _ in range(5):
        sign_in(client, "ops", WRONG)

    page = client.get("/admin/login/?next=/admin/")
    posted = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})

    assert page.status_code == 302 and page["Location"] == "/login?next=/admin/"
    assert posted.status_code == 302 and posted["Location"] == "/login?next=/admin/"
    assert not signed_in(client)
    assert sign_in(client, "ops", PASSWORD).status_code == 429


def test_a_non_staff_users_sign_in_counts_as_a_sign_in(db):
    get_user_model().objects.create_user("member", password="pw-member-123456")

    assert sign_in(Client(), "member", "pw-member-123456").status_code == 302
    assert AuditEvent.objects.get(action="LOGIN").success
