"""API key issue, revocation and verification.

Tokens are 256 random bits; only their SHA-256 is stored, so a database leak
does not leak credentials. Verified keys are cached per process for a few
seconds (``KV_API_KEY_CACHE_SECONDS``) because every request needs one and the
lookup would otherwise be a query on the hot path; revocation therefore takes
effect within that window in every process.
"""

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from buckets.core.exceptions import InvalidArgument, NotFound, Unauthenticated
from kvsite.access.guard import Scope, scopes_parse
from kvsite.access.permissions import ALL_PERMISSIONS, ROLE_PERMISSIONS, Principal
from kvsite.models import ApiKey

TOKEN_PREFIX = "kvs_"
DISPLAY_PREFIX_LENGTH = 12
# last_used_at is bookkeeping, not an audit trail: one write a minute per key is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# An account names the owner of items (/kv/items): the bucket ``items-<account>``.
ACCOUNT_MAX_LENGTH = 40
# The accounts kvsite gives out, disjoint so that no name meets another by accident: a key's
# own (``key-<id>``) and a staff user's session (``user-<id>``, kvsite.access.authentication).
KEY_ACCOUNT_PREFIX = "key-"
USER_ACCOUNT_PREFIX = "user-"
_ACCOUNT_RE = re.compile(rf"^[A-Za-z0-9_-]{{1,{ACCOUNT_MAX_LENGTH}}}$")


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def account_validate(account: str) -> str:
    """Return ``account`` if it is 1-40 letters, digits, '-' or '_', else raise InvalidArgument."""
    if not isinstance(account, str) or not _ACCOUNT_RE.match(account):
        raise InvalidArgument(f"account must be 1-{ACCOUNT_MAX_LENGTH} letters, digits, '-' or '_'")
    return account


def _account_own(api_key: ApiKey) -> str:
    """A new key's own account: ``key-<id>``, or with a random tail if an older key already holds that name."""
    account = f"{KEY_ACCOUNT_PREFIX}{api_key.pk}"
    if ApiKey.objects.filter(account=account).exclude(pk=api_key.pk).exists():
        account = f"{account}-{secrets.token_hex(4)}"
    return account


def _account_named(account: str) -> str:
    """``account`` as named at issue: any valid name but those kvsite gives out, except another key's to share it."""
    account_validate(account)
    given = account.lower().startswith((KEY_ACCOUNT_PREFIX, USER_ACCOUNT_PREFIX))
    sessions = account.lower().startswith(USER_ACCOUNT_PREFIX) and account[len(USER_ACCOUNT_PREFIX) :].isdigit()
    if given and (sessions or not ApiKey.objects.filter(account=account).exists()):
        raise InvalidArgument(
            f"accounts named {KEY_ACCOUNT_PREFIX}… or {USER_ACCOUNT_PREFIX}… are given by kvsite; to share a key's "
            f"items, name its account ({KEY_ACCOUNT_PREFIX}<id>), or choose another name"
        )
    return account


def previous_release_pattern(scopes: tuple[Scope, ...]) -> str:
    """What servers of the previous release (which read ``bucket_pattern`` only) limit a new key to.

    A single bucket scope is the pattern they understood; any other scoped key gets a pattern
    no name matches ('/' is in none), so during a rolling upgrade it opens less, never more.
    """
    if not scopes:
        return ""
    if len(scopes) == 1 and scopes[0].kind == "bucket":
        return scopes[0].glob[:100]
    return "/"


@transaction.atomic
def apikey_create(
    *,
    name: str,
    role: str,
    scopes: list[str] | tuple[str, ...] = (),
    permissions: list[str] | tuple[str, ...] = (),
    expires_at: datetime | None = None,
    account: str | None = None,
) -> IssuedApiKey:
    """Issue a key; the token is returned once and never stored.

    The key holds its role's permissions and ``permissions`` (role ``none``: only those),
    limited to ``scopes`` (``kind:glob``, kvsite/access/guard.py; none: unrestricted).

    ``account`` owns the key's items (/kv/items); keys of one account share them.
    By default a key has an account of its own, ``key-<id>``, whatever its name.
    """
    if role not in ROLE_PERMISSIONS:
        raise InvalidArgument(f"role must be one of {', '.join(sorted(ROLE_PERMISSIONS))}")
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidArgument("name must be 1-100 characters")
    unknown = sorted(set(permissions) - ALL_PERMISSIONS)
    if unknown:
        raise InvalidArgument(f"unknown permission {', '.join(unknown)}; one of {', '.join(sorted(ALL_PERMISSIONS))}")
    if not ROLE_PERMISSIONS[role] and not permissions:
        raise InvalidArgument("a key with role 'none' needs at least one permission")
    parsed = scopes_parse(list(scopes))
    if account is not None:
        account = _account_named(account)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name,
        role=role,
        scopes=[str(scope) for scope in parsed],
        permissions=sorted(set(permissions)),
        bucket_pattern=previous_release_pattern(parsed),
        account=account or "",
        token_hash=hash_token(token),
        prefix=token[:DISPLAY_PREFIX_LENGTH],
        expires_at=expires_at,
    )
    if account is None:
        api_key.account = _account_own(api_key)
        api_key.save(update_fields=["account"])
    return IssuedApiKey(api_key=api_key, token=token)


@transaction.atomic
def apikey_revoke(*, api_key_id: int) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().filter(pk=api_key_id).first()
    if api_key is None:
        raise NotFound("no such API key")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    _cache.clear()
    return api_key


class _PrincipalCache:
    """token hash (or ``id:<pk>``: a key by id) -> (principal, expires_at monotonic, key expiry), per process."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float, datetime | None]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> tuple[Principal, datetime | None] | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0], entry[2]

    def put(self, token_hash: str, principal: Principal, key_expires_at: datetime | None) -> None:
        ttl = settings.KV_API_KEY_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (principal, time.monotonic() + ttl, key_expires_at)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _PrincipalCache()


def principal_for_api_key(api_key: ApiKey) -> Principal:
    return Principal(
        kind="api_key",
        id=api_key.pk,
        name=api_key.name,
        permissions=ROLE_PERMISSIONS.get(api_key.role, frozenset()) | frozenset(api_key.permissions),
        scopes=scopes_parse(api_key.scopes),
        account=api_key.account,
    )


def apikey_authenticate(*, token: str) -> Principal:
    """The principal for a bearer token, or Unauthenticated."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise Unauthenticated("invalid API key")
    token_hash = hash_token(token)
    now = timezone.now()
    cached = _cache.get(token_hash)
    if cached is not None:
        principal, key_expires_at = cached
        if key_expires_at is not None and key_expires_at <= now:
            raise Unauthenticated("API key expired")
        return principal
    api_key = ApiKey.objects.filter(token_hash=token_hash).first()
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthenticated("invalid API key")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthenticated("API key expired")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    principal = principal_for_api_key(api_key)
    _cache.put(token_hash, principal, api_key.expires_at)
    return principal


def apikey_principal(*, api_key_id: int) -> Principal:
    """The principal of key ``api_key_id`` as it stands now, or Unauthenticated if it was revoked or has expired.

    For what was authenticated earlier (an open watch, a ticket): cached as a token's lookup is,
    so a revocation elsewhere is seen within ``KV_API_KEY_CACHE_SECONDS``; an expiry at once.
    """
    cache_key = f"id:{api_key_id}"
    cached = _cache.get(cache_key)
    if cached is None:
        api_key = ApiKey.objects.filter(pk=api_key_id).first()
        if api_key is None or api_key.revoked_at is not None:
            raise Unauthenticated("the API key was revoked")
        principal, key_expires_at = principal_for_api_key(api_key), api_key.expires_at
        _cache.put(cache_key, principal, key_expires_at)
    else:
        principal, key_expires_at = cached
    if key_expires_at is not None and key_expires_at <= timezone.now():
        raise Unauthenticated("the API key expired")
    return principal
