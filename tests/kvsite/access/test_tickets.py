"""kvsite.access.tickets: one-time WebSocket tickets, and the endpoint that issues them."""

import time

import pytest
from rest_framework.test import APIClient

from buckets.core.exceptions import Unauthenticated
from kvsite.access import apikeys
from kvsite.access.guard import Scope
from kvsite.access.permissions import ENTRY_READ, ROLE_PERMISSIONS, Principal
from kvsite.access.tickets import ticket_create, ticket_redeem

PRINCIPAL = Principal(
    kind="api_key", id=7, name="reader", permissions=frozenset({ENTRY_READ}), scopes=(Scope("bucket", "a*"),)
)


def test_a_ticket_redeems_once_as_the_principal_that_asked() -> None:
    issued = ticket_create(principal=PRINCIPAL)

    assert ticket_redeem(ticket=issued.ticket) == PRINCIPAL
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=issued.ticket)


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
    principal = ticket_redeem(ticket=response.json()["ticket"])
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
