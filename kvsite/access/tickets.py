"""Short-lived, single-use WebSocket tickets.

A browser page of another app cannot set an ``Authorization`` header on a
WebSocket, and a long-lived API key must never sit in a URL (logs, history,
referrers keep URLs). So a client that holds a credential trades it, over
HTTPS, for a ticket that opens exactly one WebSocket within a few seconds, as
the principal that asked for it.

Tickets live in the Django cache (Redis in production, so any server process
can redeem one); only their SHA-256 is used as the cache key.
"""

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from buckets.core.exceptions import Unauthenticated
from kvsite.access.permissions import Principal

TICKET_PREFIX = "kvt_"
_CACHE_PREFIX = "kv:ws-ticket:"


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_in: int


def _cache_key(ticket: str) -> str:
    return _CACHE_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_create(*, principal: Principal) -> IssuedTicket:
    """Issue a ticket that will authenticate one WebSocket as ``principal``."""
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    lifetime = settings.KV_WATCH_TICKET_SECONDS
    cache.set(_cache_key(ticket), principal, timeout=lifetime)
    return IssuedTicket(ticket=ticket, expires_in=lifetime)


def ticket_redeem(*, ticket: str) -> Principal:
    """The principal a ticket was issued to; the ticket is gone afterwards.

    Two redeemers racing for one ticket may both read it, but only one delete
    succeeds, and only that one is let in.
    """
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
        raise Unauthenticated("invalid or expired ticket")
    key = _cache_key(ticket)
    principal = cache.get(key)
    if not isinstance(principal, Principal) or not cache.delete(key):
        raise Unauthenticated("invalid or expired ticket")
    return principal
