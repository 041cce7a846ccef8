"""API key issue, revocation and verification.

Tokens are 256 random bits; only their SHA-256 is stored, so a database leak
does not leak credentials. Verified keys are cached per process for a few
seconds (``KV_API_KEY_CACHE_SECONDS``) because every request needs one and the
lookup would otherwise be a query on the hot path; revocation therefore takes
effect within that window in every process.

Issue and revocation are audited in their own transaction (``apikeys`` rows: who, the key's
role, permissions and scopes, never its token), and bounded by the issuer's authority: a
key manages only keys that hold no permission it lacks and reach nothing it cannot reach
(``within_authority``), so ``apikeys:manage`` is no way to a wider key.
"""

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from buckets.core.exceptions import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from kvsite.access.audit import Action, AuditActor, audit_actor_system, audit_operation
from kvsite.access.guard import APIKEYS, BUCKET, Resource, Scope, scopes_parse
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
# The name of key management in audit rows: the resource its API is declared on.
AUDIT_NAME = str(Resource(APIKEYS))
# Who issues and revokes when no one asked over HTTP or on the command line (fixtures, scripts).
SYSTEM = audit_actor_system(name="kvsite")
# --expires: a lifetime (30d, 12h, 2w), a date (at 00:00 UTC) or an ISO 8601 date-time.
_LIFETIME_RE = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_LIFETIME_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_GLOB_WILDCARDS = frozenset("*?[")


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
    if len(scopes) == 1 and scopes[0].kind == BUCKET:
        return scopes[0].glob[:100]
    return "/"


def expiry_parse(text: str, *, now: datetime | None = None) -> datetime:
    """When a key given ``--expires text`` expires: ``30d``, ``12h``, ``2w`` from now, a date, or a date-time.

    A date means its first moment in UTC; a date-time without an offset is UTC. InvalidArgument
    for anything else, and for a moment that is not in the future.
    """
    now = now or timezone.now()
    text = text.strip()
    lifetime = _LIFETIME_RE.match(text)
    try:
        if lifetime:
            moment: datetime | None = now + int(lifetime.group(1)) * _LIFETIME_UNITS[lifetime.group(2)]
        else:
            moment = parse_datetime(text)
            day = parse_date(text) if moment is None else None
            if day is not None:
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise InvalidArgument(
            f"expiry {text!r}: give a lifetime (30d, 12h, 2w), a date (2027-01-01) or an ISO 8601 date-time"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise InvalidArgument(f"expiry {text!r} is in the past; a key must expire after it is issued")
    return moment


def _glob_within(inner: str, outer: str) -> bool:
    """Whether every name ``inner`` matches is matched by ``outer``; when that is not plain, no."""
    if outer == "*" or inner == outer:
        return True
    literal = outer[:-1]
    if outer.endswith("*") and not _GLOB_WILDCARDS & set(literal):
        # outer is a literal prefix and a star: inner's own literal start decides (orders-eu-* within orders-*).
        return inner.startswith(literal)
    return not _GLOB_WILDCARDS & set(inner) and fnmatchcase(inner, outer)


def scope_within(scope: Scope, limits: Iterable[Scope]) -> bool:
    """Whether ``limits`` reach everything ``scope`` reaches: one of them, of its kind, holds its glob."""
    return any(limit.kind == scope.kind and _glob_within(scope.glob, limit.glob) for limit in limits)


def authority_exceeded(principal: Principal, *, permissions: frozenset[str], scopes: tuple[Scope, ...]) -> str:
    """What a key holding ``permissions`` within ``scopes`` has beyond ``principal`` ("" if nothing)."""
    extra = sorted(permissions - principal.permissions)
    if extra:
        return f"permissions it does not hold ({', '.join(extra)})"
    if not principal.scopes:
        return ""
    limits = ", ".join(str(scope) for scope in principal.scopes)
    if not scopes:
        return f"no scopes, where it is limited to {limits}"
    wider = [str(scope) for scope in scopes if not scope_within(scope, principal.scopes)]
    if wider:
        return f"scopes beyond its own {limits} ({', '.join(wider)})"
    return ""


def within_authority(api_key: ApiKey, principal: Principal) -> bool:
    """Whether ``principal`` may see and revoke ``api_key``: it could have issued it."""
    held = principal_for_api_key(api_key)
    return not authority_exceeded(principal, permissions=held.permissions, scopes=held.scopes)


def _issuer_check(
    principal: Principal,
    *,
    permissions: frozenset[str],
    scopes: tuple[Scope, ...],
    account: str | None,
    expires_at: datetime | None,
) -> None:
    """PermissionDenied unless ``principal`` may issue this key: nothing beyond its own, and no longer-lived."""
    beyond = authority_exceeded(principal, permissions=permissions, scopes=scopes)
    if beyond:
        raise PermissionDenied(f"a key cannot issue a key with {beyond}")
    if principal.kind != "api_key":
        return  # staff users hold every permission, unscoped, as on the dashboard
    if account is not None and account != principal.account:
        # Naming an account hands over its items: a key may share its own, never another's.
        raise PermissionDenied(f"a key may name only its own account ({principal.account}) for the keys it issues")
    # The issuer's row, not the principal cached for a few seconds: a key revoked a moment ago issues
    # nothing, and its revocation (which locks the row too) comes wholly before or after this issue.
    issuer = ApiKey.objects.select_for_update().filter(pk=principal.id).first()
    if issuer is None or issuer.revoked_at is not None:
        raise Unauthenticated("invalid API key")
    if issuer.expires_at is not None and (expires_at is None or expires_at > issuer.expires_at):
        raise PermissionDenied(
            f"this key expires at {issuer.expires_at.isoformat()}; the keys it issues must expire by then"
        )


def _described(api_key: ApiKey) -> str:
    """A key as its audit rows show it: everything it may do, never its token or hash."""
    return "; ".join(
        [
            f"key {api_key.pk} ({api_key.prefix}…)",
            f"role {api_key.role}",
            f"permissions {', '.join(api_key.permissions) or '-'}",
            f"scopes {', '.join(api_key.scopes) or 'none (unrestricted)'}",
            f"account {api_key.account}",
            f"expires {api_key.expires_at.isoformat() if api_key.expires_at else 'never'}",
        ]
    )


def apikey_create(
    *,
    name: str,
    role: str,
    scopes: list[str] | tuple[str, ...] = (),
    permissions: list[str] | tuple[str, ...] = (),
    expires_at: datetime | None = None,
    account: str | None = None,
    actor: AuditActor = SYSTEM,
) -> IssuedApiKey:
    """Issue a key; the token is returned once and never stored.

    The key holds its role's permissions and ``permissions`` (role ``none``: only those),
    limited to ``scopes`` (``kind:glob``, kvsite/access/guard.py; none: unrestricted).

    ``account`` owns the key's items (/kv/items); keys of one account share them.
    By default a key has an account of its own, ``key-<id>``, whatever its name.

    Audited as ``actor``, in this transaction (a refusal after its rollback). An actor acting
    as a key (``actor.principal``) issues nothing beyond that key (``_issuer_check``).
    """
    with audit_operation(actor=actor, action=Action.WRITE, namespace=AUDIT_NAME, key_path=name) as record:
        if role not in ROLE_PERMISSIONS:
            raise InvalidArgument(f"role must be one of {', '.join(sorted(ROLE_PERMISSIONS))}")
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidArgument("name must be 1-100 characters")
        unknown = sorted(set(permissions) - ALL_PERMISSIONS)
        if unknown:
            raise InvalidArgument(
                f"unknown permission {', '.join(unknown)}; one of {', '.join(sorted(ALL_PERMISSIONS))}"
            )
        if not ROLE_PERMISSIONS[role] and not permissions:
            raise InvalidArgument("a key with role 'none' needs at least one permission")
        parsed = scopes_parse(list(scopes))
        if expires_at is not None and expires_at <= timezone.now():
            raise InvalidArgument("the expiry is in the past; a key must expire after it is issued")
        if actor.principal is not None:
            _issuer_check(
                actor.principal,
                permissions=ROLE_PERMISSIONS[role] | frozenset(permissions),
                scopes=parsed,
                account=account,
                expires_at=expires_at,
            )
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
        record.detail = f"issued {_described(api_key)}"
        return IssuedApiKey(api_key=api_key, token=token)


def apikey_revoke(*, api_key_id: int, actor: AuditActor = SYSTEM) -> ApiKey:
    """Revoke a key at once in this process (within ``KV_API_KEY_CACHE_SECONDS`` in others); audited as ``actor``.

    A key acting as ``actor`` revokes only keys within its authority; others are not found,
    as its listing does not show them.
    """
    with audit_operation(actor=actor, action=Action.DELETE, namespace=AUDIT_NAME, key_path=str(api_key_id)) as record:
        api_key = ApiKey.objects.select_for_update().filter(pk=api_key_id).first()
        if api_key is None or (actor.principal is not None and not within_authority(api_key, actor.principal)):
            raise NotFound("no such API key")
        record.key_path = api_key.name
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            record.detail = f"revoked {_described(api_key)}"
        else:
            record.detail = f"already revoked {_described(api_key)}"
    # Now, for this process, and again on commit: a lookup in between must not cache the key as it was.
    _cache.clear()
    transaction.on_commit(_cache.clear)
    return api_key


def apikey_list(*, principal: Principal | None = None) -> list[ApiKey]:
    """Keys, active first, newest first; for ``principal``, those within its authority only."""
    keys = ApiKey.objects.order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-id")
    return [key for key in keys if principal is None or within_authority(key, principal)]


def apikey_find(*, text: str) -> list[ApiKey]:
    """The keys ``text`` names: by name, by the start of their display prefix, or by their whole token."""
    text = text.strip()
    if not text:
        return []
    match = Q(name=text)
    if text.startswith(TOKEN_PREFIX):
        match |= (
            Q(prefix__startswith=text[:DISPLAY_PREFIX_LENGTH])
            if len(text) <= DISPLAY_PREFIX_LENGTH
            else Q(token_hash=hash_token(text))
        )
    keys = ApiKey.objects.filter(match).order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-id")
    # SQLite's LIKE ignores case, and prefixes are case-sensitive: the database only narrows.
    return [key for key in keys if key.name == text or key.prefix.startswith(text[:DISPLAY_PREFIX_LENGTH])]


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
