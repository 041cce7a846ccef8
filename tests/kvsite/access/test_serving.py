"""The guard on each serving path users run, end to end: real server processes, the test database.

Login throttling keeps its counters in Django's cache, which is each process's own memory
under ``make run`` and Redis under ``make serve``: both are tried, with the server's own
clock and client address. Refusals are answered and recorded by the server as they are
in-process: a JSON 403, and a row naming the resource as the API names it.
"""

import contextlib
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth import get_user_model

from kvsite.access import apikeys
from kvsite.models import AuditEvent
from tests.live_server import AsgiServer, redis_available, server_redis_url, start_asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

PASSWORD = "pw-" + secrets.token_hex(8)


@pytest.fixture(scope="module", params=["development", "production"])
def server(request, django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    if request.param != "development" and not redis_available(server_redis_url()):
        pytest.skip(f"the {request.param} path needs Redis at {server_redis_url()}")
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        served = start_asgi_server(serving=request.param)
        stack.callback(served.stop)
        yield served


def sign_in(server: AsgiServer, username: str, password: str) -> httpx.Response:
    """The login form as a browser sends it: the page first (its CSRF cookie and token), then the POST."""
    with httpx.Client(base_url=server.http_url) as browser:
        page = browser.get("/login")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        return browser.post(
            "/login",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": server.http_url + "/login"},
        )


def test_failed_sign_ins_are_throttled_by_the_server_and_audited(server: AsgiServer) -> None:
    # Given a staff user of this test (a username no other test's failures count against)
    username = f"ops-{secrets.token_hex(4)}"
    get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)

    # When five wrong passwords come, then the right one
    failures = [sign_in(server, username, "wrong").status_code for _ in range(5)]
    refused = sign_in(server, username, PASSWORD)

    # Then the server refuses the right one too, saying how long to wait
    assert failures == [200] * 5
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts for this username" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # and every attempt is on the audit log with the username and the address, never the password
    rows = AuditEvent.objects.filter(action="LOGIN", actor_name=username).order_by("id")
    assert [row.success for row in rows] == [False] * 6
    assert {row.client_ip for row in rows} == {"127.0.0.1"}
    assert not any(PASSWORD in f"{row.reason} {row.detail}" for row in rows)


def test_a_right_password_signs_in_through_the_server(server: AsgiServer) -> None:
    username = f"ops-{secrets.token_hex(4)}"
    get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)

    response = sign_in(server, username, PASSWORD)

    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert AuditEvent.objects.filter(action="LOGIN", actor_name=username, success=True).count() == 1


def test_a_scope_of_another_kind_is_refused_by_the_server_with_json_and_recorded(server: AsgiServer) -> None:
    # A bucket scope whose glob would match the environment's name opens no config documents.
    token = apikeys.apikey_create(name=f"scoped-{secrets.token_hex(4)}", role="writer", scopes=["bucket:*prod*"]).token
    headers = {"Authorization": f"Bearer {token}", "X-Ironflow-Environment-ID": "prod"}

    response = httpx.post(f"{server.http_url}/api/v1/config/flags", json={"beta": True}, headers=headers)

    assert response.status_code == 403
    assert response.json() == {"error": "this key may not access config:prod", "code": "permission_denied"}
    row = AuditEvent.objects.filter(success=False, key_path="flags").latest("id")
    assert (row.action, row.namespace, row.reason) == ("WRITE", "config:prod", "this key may not access config:prod")
