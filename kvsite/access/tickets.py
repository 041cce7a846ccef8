"""Short-lived, single-use WebSocket tickets.

A browser page of another app cannot set an ``Authorization`` header on a
WebSocket, and a long-lived API key must never sit in a URL (logs, history,
referrers keep URLs). So a client that holds a credential trades it, over
HTTPS, for a ticket that opens exactly one WebSocket within a few seconds, as
the principal that asked for it.

Tickets live in the Django cache (Redis in production, so any server process
can redeem one); only their SHA-256 is used as the cache key. A ticket opens a
watch only if its principal still stands when it is redeemed (a key not revoked
or expired, a user still active staff and, for a ticket a session asked for,
still signed in to it), as it stands then. That session's key is a credential,
so the cache holds it only sealed under the ticket, which the cache never holds.
"""

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.cache import cache

from buckets.core.exceptions import Unauthenticated
from kvsite.access.permissions import Principal
from kvsite.access.revalidation import Authenticated, principal_revalidate

TICKET_PREFIX = "kvt_"
_CACHE_PREFIX = "kv:ws-ticket:"


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_in: int


@dataclass(frozen=True)
class _Issued:
    """What the cache holds for a ticket: the principal, and the session that asked for it (sealed; b"": none)."""

    principal: Principal
    session: bytes = b""


def _cache_key(ticket: str) -> str:
    return _CACHE_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def _session_cipher(ticket: str) -> AESGCM:
    # A key only the ticket's holder can derive (the cache key is another hash of the ticket), used for one seal.
    return AESGCM(hashlib.sha256(b"kvsite ws-ticket session\x00" + ticket.encode()).digest())


def _session_seal(ticket: str, session_key: str) -> bytes:
    if not session_key:
        return b""
    nonce = secrets.token_bytes(12)
    return nonce + _session_cipher(ticket).encrypt(nonce, session_key.encode(), None)


def _session_open(ticket: str, sealed: bytes) -> str:
    if not sealed:
        return ""
    try:
        return _session_cipher(ticket).decrypt(sealed[:12], sealed[12:], None).decode()
    except InvalidTag:
        raise Unauthenticated("invalid or expired ticket") from None


def ticket_create(*, principal: Principal, session_key: str = "") -> IssuedTicket:
    """Issue a ticket that will authenticate one WebSocket as ``principal`` (signed in to ``session_key``, if any)."""
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    lifetime = settings.KV_WATCH_TICKET_SECONDS
    issued = _Issued(principal=principal, session=_session_seal(ticket, session_key))
    cache.set(_cache_key(ticket), issued, timeout=lifetime)
    return IssuedTicket(ticket=ticket, expires_in=lifetime)


def ticket_redeem(*, ticket: str) -> Authenticated:
    """The principal a ticket was issued to, as it stands now (``principal_revalidate``); the ticket is gone afterwards.

    Two redeemers racing for one ticket may both read it, but only one delete
    succeeds, and only that one is let in.
    """
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
        raise Unauthenticated("invalid or expired ticket")
    key = _cache_key(ticket)
    issued = cache.get(key)
    if isinstance(issued, Principal):
        issued = _Issued(principal=issued)  # issued by a server of the previous release
    if not isinstance(issued, _Issued) or not cache.delete(key):
        raise Unauthenticated("invalid or expired ticket")
    session_key = _session_open(ticket, issued.session)
    return Authenticated(
        principal=principal_revalidate(principal=issued.principal, session_key=session_key), session_key=session_key
    )
