"""kvsite.access.tickets: one-time WebSocket tickets, and the endpoint that issues them."""

import pickle
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from buckets.core.exceptions import Unauthenticated
from kvsite.access import apikeys
from kvsite.access.authentication import principal_for_user
from kvsite.access.guard import Scope
from kvsite.access.permissions import ENTRY_READ, ROLE_PERMISSIONS, Principal
from kvsite.access.revalidation import Authenticated
from kvsite.access.tickets import _cache_key, ticket_create, ticket_redeem
from kvsite.models import ApiKey

PRINCIPAL = Principal(
    kind="api_key", id=7, name="reader", permissions=frozenset({ENTRY_READ}), scopes=(Scope("bucket", "a*"),)
)


def reader_principal() -> tuple[int, Principal]:
    issued = apikeys.apikey_create(name="reader", role="reader", scopes=["bucket:a*"])
    return issued.api_key.pk, apikeys.apikey_authenticate(token=issued.token)


@pytest.mark.django_db
def test_a_ticket_redeems_once_as_the_principal_that_asked() -> None:
    _, principal = reader_principal()
    issued = ticket_create(principal=principal)

    assert ticket_redeem(ticket=issued.ticket) == Authenticated(principal=principal)
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=issued.ticket)


@pytest.mark.django_db
def test_a_ticket_whose_key_was_revoked_or_expired_since_issue_is_refused() -> None:
    revoked_id, revoked = reader_principal()
    expired_id, expired = reader_principal()
    tickets = [ticket_create(principal=revoked).ticket, ticket_create(principal=expired).ticket]
    apikeys.apikey_revoke(api_key_id=revoked_id)
    ApiKey.objects.filter(pk=expired_id).update(expires_at="2000-01-01T00:00:00Z")

    for ticket in tickets:
        with pytest.raises(Unauthenticated):
            ticket_redeem(ticket=ticket)


@pytest.mark.django_db
def test_a_ticket_redeems_as_its_principal_stands_now() -> None:
    key_id, principal = reader_principal()
    issued = ticket_create(principal=principal)
    ApiKey.objects.filter(pk=key_id).update(scopes=["bucket:b*"])
    apikeys._cache.clear()

    assert ticket_redeem(ticket=issued.ticket).principal.scopes == (Scope("bucket", "b*"),)


@pytest.mark.django_db
def test_a_ticket_a_session_asked_for_follows_the_session_and_the_user() -> None:
    users = get_user_model()
    kept, destaffed, signed_out = Client(), Client(), Client()
    for username, client in [("kept", kept), ("destaffed", destaffed), ("signed-out", signed_out)]:
        client.force_login(users.objects.create_user(username, password="x", is_staff=True))
    tickets = {client: client.post("/api/v1/ws-ticket").json()["ticket"] for client in (kept, destaffed, signed_out)}
    users.objects.filter(username="destaffed").update(is_staff=False)
    signed_out.logout()

    redeemed = ticket_redeem(ticket=tickets[kept])
    assert redeemed == Authenticated(
        principal=principal_for_user(users.objects.get(username="kept")), session_key=kept.session.session_key
    )
    for client in (destaffed, signed_out):
        with pytest.raises(Unauthenticated):
            ticket_redeem(ticket=tickets[client])


@pytest.mark.django_db
def test_the_cache_holds_no_usable_session_key_for_a_ticket_a_session_asked_for() -> None:
    client = Client()
    client.force_login(get_user_model().objects.create_user("ops", password="x", is_staff=True))
    session_key = client.session.session_key
    ticket = client.post("/api/v1/ws-ticket").json()["ticket"]

    held = pickle.dumps(cache.get(_cache_key(ticket)))

    assert session_key.encode() not in held and ticket.encode() not in held
    assert ticket_redeem(ticket=ticket).session_key == session_key


@pytest.mark.django_db
def test_a_ticket_of_the_previous_release_is_redeemed_and_checked_too() -> None:
    key_id, principal = reader_principal()
    # Servers of the previous release stored the principal alone.
    cache.set(_cache_key("kvt_previous"), principal, timeout=30)
    cache.set(_cache_key("kvt_previous-revoked"), principal, timeout=30)

    assert ticket_redeem(ticket="kvt_previous") == Authenticated(principal=principal)
    apikeys.apikey_revoke(api_key_id=key_id)
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket="kvt_previous-revoked")


def test_a_ticket_expires(settings) -> None:
    settings.KV_WATCH_TICKET_SECONDS = 1
    issued = ticket_create(principal=PRINCIPAL)

    time.sleep(1.1)

    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=issued.ticket)


@pytest.mark.parametrize("ticket", ["", "kvt_unknown", "kvs_an-api-key-is-no-ticket", "kvt_" + "x" * 200])
def test_unknown_tickets_are_refused(ticket: str) -> None:
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=ticket)


@pytest.mark.django_db
def test_ticket_endpoint_issues_for_the_caller_and_needs_credentials(client_for) -> None:
    response = client_for("reader", buckets="a*").post("/api/v1/ws-ticket")

    assert response.status_code == 201
    assert response.json()["expires_in"] == 30
    principal = ticket_redeem(ticket=response.json()["ticket"]).principal
    assert principal.scopes == (Scope("bucket", "a*"),)
    assert principal.permissions == ROLE_PERMISSIONS["reader"]
    anonymous = APIClient().post("/api/v1/ws-ticket")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthenticated"


@pytest.mark.django_db
def test_a_ticket_needs_a_permission_a_watch_needs_and_no_scope() -> None:
    def issue(**key: object) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {apikeys.apikey_create(name='k', **key).token}")
        return client.post("/api/v1/ws-ticket").status_code

    assert issue(role="none", permissions=["metrics:read"]) == 403
    assert issue(role="none", permissions=["kv-audit:read", "apikeys:manage"]) == 403
    assert issue(role="none", permissions=["config:read"]) == 201
    assert issue(role="none", permissions=["kv-entry:read"]) == 201
    # A ticket is the caller's own: whatever its scopes, the watch it opens decides.
    assert issue(role="reader", scopes=["secrets:prod"]) == 201
