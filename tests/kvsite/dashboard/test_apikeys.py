"""The API keys page (``/api-keys``): a new key's token shown once, revoking, form errors."""

import re

from kvsite.models import ApiKey, AuditEvent

from .conftest import page_text


def test_create_api_key_shows_the_token_once(staff_client, db):
    response = staff_client.post(
        "/api-keys", {"name": "ci", "role": "writer", "bucket_pattern": "orders-*", "account": "team-a"}, follow=True
    )

    assert response.status_code == 200
    body = page_text(response)
    token = re.search(r'id="issued-token"[^>]*value="(kvs_[^"]+)"', body).group(1)
    api_key = ApiKey.objects.get(name="ci")
    assert (api_key.role, api_key.bucket_pattern, api_key.prefix) == ("writer", "orders-*", token[:12])
    assert api_key.account == "team-a"
    listing = page_text(staff_client.get("/api-keys"))
    assert api_key.prefix in listing and token not in listing


def test_creating_a_key_redirects_and_the_token_is_shown_on_the_next_page_only(staff_client, db):
    created = staff_client.post("/api-keys", {"name": "ci", "role": "writer"})

    assert (created.status_code, created["Location"]) == (302, "/api-keys")
    first = page_text(staff_client.get("/api-keys"))
    token = re.search(r'id="issued-token"[^>]*value="(kvs_[^"]+)"', first).group(1)
    again = page_text(staff_client.get("/api-keys"))
    assert token not in again and 'id="issued-token"' not in again
    assert ApiKey.objects.filter(name="ci").count() == 1


def test_the_session_holds_the_waiting_token_sealed_and_drops_it_unshown_after_a_while(staff_client, db, monkeypatch):
    from django.contrib.sessions.models import Session

    from kvsite.dashboard import apikeys as page

    staff_client.post("/api-keys", {"name": "first", "role": "writer"})
    row = Session.objects.get(session_key=staff_client.session.session_key)
    token = re.search(r'value="(kvs_[^"]+)"', page_text(staff_client.get("/api-keys"))).group(1)
    # The session row held the key's name, never its token, in any encoding the session uses
    assert token not in row.session_data and token not in str(row.get_decoded())
    assert "first" in str(row.get_decoded())

    staff_client.post("/api-keys", {"name": "late", "role": "writer"})
    monkeypatch.setattr(page, "ISSUED_SHOWN_WITHIN", -1)  # the page is opened after the wait
    late = page_text(staff_client.get("/api-keys"))
    assert 'id="issued-token"' not in late and ApiKey.objects.filter(name="late").count() == 1


def test_revoke_api_key(staff_client, db):
    staff_client.post("/api-keys", {"name": "old", "role": "reader"})
    api_key = ApiKey.objects.get(name="old")

    response = staff_client.post("/api-keys/revoke", {"api_key_id": api_key.pk})

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert "revoked" in page_text(staff_client.get("/api-keys"))
    assert staff_client.post("/api-keys/revoke", {"api_key_id": 999999}).status_code == 404


def test_invalid_api_key_input_is_a_form_error(staff_client, db):
    response = staff_client.post("/api-keys", {"name": "", "role": "root"})
    bad_account = staff_client.post("/api-keys", {"name": "x", "role": "reader", "account": "no spaces"})

    assert response.status_code == 200
    assert 'id="issued-token"' not in page_text(response)
    assert "account must be 1-40 letters" in page_text(bad_account)
    assert not ApiKey.objects.exists()


def test_a_key_made_on_the_page_gets_its_own_account_and_never_a_users(staff_client, staff):
    staff_client.post("/api-keys", {"name": f"User {staff.pk}", "role": "reader"})
    refused = staff_client.post("/api-keys", {"name": "x", "role": "reader", "account": f"user-{staff.pk}"})

    api_key = ApiKey.objects.get()
    assert api_key.account == f"key-{api_key.pk}"
    assert "given by kvsite" in page_text(refused) and 'id="issued-token"' not in page_text(refused)


def test_issuing_and_revoking_on_the_page_are_audited_as_the_staff_user(staff_client, staff):
    response = staff_client.post(
        "/api-keys", {"name": "ci", "role": "writer", "bucket_pattern": "orders-*"}, follow=True
    )
    token = re.search(r'id="issued-token"[^>]*value="(kvs_[^"]+)"', page_text(response)).group(1)
    api_key = ApiKey.objects.get(name="ci")
    staff_client.post("/api-keys/revoke", {"api_key_id": api_key.pk})

    events = list(AuditEvent.objects.filter(namespace="apikeys").order_by("id"))
    assert [(e.action, e.key_path, e.actor_type, e.actor_name, e.success) for e in events] == [
        ("WRITE", "ci", "user", "ops", True),
        ("DELETE", "ci", "user", "ops", True),
    ]
    assert "role writer; permissions -; scopes bucket:orders-*" in events[0].detail
    assert token not in str(list(AuditEvent.objects.values_list()))
