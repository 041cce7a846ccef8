"""The items dialect: an account's JSON values by key, on the storage core.

An account's items are the keys of one user bucket, ``items-<account>``,
created by its first write with text keys (any UTF-8 without control
characters), one kept revision and the account's key quota, so the dashboard
and watchers see it like any bucket. A value is stored as its exact compact
JSON (``kvsite.http.jsonbody.dump_json_exact``: numbers keep their literal text);
an item's version is its entry's revision, which every write to the bucket
raises, so no two writes of a key ever share a version.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from buckets.core import clock, store
from buckets.core.exceptions import AlreadyExists, BucketNotFound, InvalidArgument, KeyNotFound, ValueTooLarge
from buckets.core.keys import TEXT_KEYS, validate_key
from buckets.core.names import ITEMS_BUCKET_PREFIX, app_bucket
from buckets.models import Bucket
from kvsite.access.apikeys import account_validate
from kvsite.http.jsonbody import MAX_DEPTH, RawJson, dump_json_exact, json_depth, json_text_checked

MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 365 * 24 * 60 * 60
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200
BUCKET_PREFIX = ITEMS_BUCKET_PREFIX


class ItemNotJson(AlreadyExists):
    """The key holds bytes that are not JSON: written into the bucket through the bucket API."""

    code = "failed_precondition"

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} holds a value that is not JSON; it was not written through the items API")


@dataclass(frozen=True)
class Item:
    key: str
    version: str
    expires_at: datetime | None
    updated_at: datetime
    value: RawJson | None = None  # the stored JSON; only reads of one item carry it


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    next_cursor: str | None


@dataclass(frozen=True)
class ItemsUsage:
    account: str
    keys: int
    max_keys: int
    bytes: int
    max_value_bytes: int


def items_bucket(account: str) -> str:
    """The internal name of ``account``'s items bucket."""
    return app_bucket(BUCKET_PREFIX + account_validate(account))


def items_bucket_prefix() -> str:
    """The internal name prefix every account's items bucket starts with."""
    return app_bucket(BUCKET_PREFIX)


def _ensure_bucket(bucket: str) -> None:
    store.bucket_ensure(
        name=bucket,
        description="Items of the /kv/items API",
        key_format=TEXT_KEYS,
        history=1,
        max_value_size=settings.KV_ITEMS_MAX_VALUE_BYTES,
        max_keys=settings.KV_ITEMS_MAX_KEYS,
    )


def item_value_encode(value: Any) -> bytes:
    """The stored form of ``value``: exact compact JSON, within the depth and size limits."""
    if json_depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidArgument(f"value is nested more than {MAX_DEPTH} levels deep")
    try:
        encoded = dump_json_exact(value)
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"value is not JSON: {error}") from None
    limit = settings.KV_ITEMS_MAX_VALUE_BYTES
    if len(encoded) > limit:
        raise ValueTooLarge(f"value is {len(encoded)} bytes as compact JSON; at most {limit} are allowed")
    return encoded


def _expiry(*, ttl_seconds: int | None, expires_at: datetime | None, now: datetime) -> datetime | None:
    if ttl_seconds is not None and expires_at is not None:
        raise InvalidArgument("send ttlSeconds or expiresAt, not both")
    if ttl_seconds is not None:
        if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidArgument(f"ttlSeconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} (365 days)")
        return now + timedelta(seconds=ttl_seconds)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidArgument("expiresAt must carry a time zone (Z or +hh:mm)")
        if expires_at <= now:
            raise InvalidArgument("expiresAt must be in the future")
        if expires_at > now + timedelta(seconds=MAX_TTL_SECONDS):
            raise InvalidArgument("expiresAt must be at most 365 days ahead")
    return expires_at


def item_put(
    *,
    account: str,
    key: str,
    value: Any,
    ttl_seconds: int | None = None,
    expires_at: datetime | None = None,
    if_version: int | None = None,
) -> Item:
    """Store ``value`` under ``key``; the bucket is created by the account's first write.

    ``if_version``: 0 writes only if the key does not exist, a version only if
    the key is at it (PreconditionFailed, 412, otherwise). A new key past the
    account's quota is KeyLimitReached (507); overwrites always fit.
    """
    validate_key(key, key_format=TEXT_KEYS)
    encoded = item_value_encode(value)
    expiry = _expiry(ttl_seconds=ttl_seconds, expires_at=expires_at, now=clock.now())
    if if_version is not None and if_version < 0:
        raise InvalidArgument("ifVersion must be a version or 0")
    bucket = items_bucket(account)
    write = {
        "bucket": bucket,
        "key": key,
        "value": encoded,
        "if_absent": if_version == 0,
        "if_revision": if_version or None,
        "expires_at": expiry,
    }
    # Most writes find the bucket; creating it only on BucketNotFound saves a query per write.
    try:
        entry = store.entry_put(**write)
    except BucketNotFound:
        _ensure_bucket(bucket)
        entry = store.entry_put(**write)
    return Item(key=key, version=str(entry.revision), expires_at=entry.expires_at, updated_at=entry.created_at)


def item_get(*, account: str, key: str) -> Item:
    """The live item under ``key`` with its value; KeyNotFound (404) if absent or expired."""
    try:
        entry = store.entry_get(bucket=items_bucket(account), key=key, key_format=TEXT_KEYS)
    except BucketNotFound:
        raise KeyNotFound(key) from None
    try:
        text = json_text_checked(bytes(entry.value))
    except ValueError:
        raise ItemNotJson(key) from None
    return Item(
        key=entry.key,
        version=str(entry.revision),
        expires_at=entry.expires_at,
        updated_at=entry.created_at,
        value=RawJson(text),
    )


def item_delete(*, account: str, key: str) -> None:
    """Remove ``key`` at once, with its history (a purge); KeyNotFound (404) if it is absent."""
    validate_key(key, key_format=TEXT_KEYS)
    try:
        store.entry_purge(bucket=items_bucket(account), key=key)
    except BucketNotFound:
        raise KeyNotFound(key) from None


def item_list(
    *, account: str, prefix: str = "", limit: int = LIST_LIMIT_DEFAULT, cursor: str | None = None
) -> ItemPage:
    """Live items by key (byte order), optionally under ``prefix``, a page at a time.

    The cursor is the last key of the page: the next page starts after it, so a
    walk never returns a key twice, and keys that live throughout it are all
    returned, whatever is written between pages (keys written behind the cursor
    are simply not seen).
    """
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidArgument(f"limit must be between 1 and {LIST_LIMIT_MAX}")
    if prefix:
        try:
            validate_key(prefix, key_format=TEXT_KEYS)
        except InvalidArgument as error:
            raise InvalidArgument(error.message.replace("key", "prefix", 1)) from None
    after = None
    if cursor:
        after = store.decode_cursor(cursor)
        try:
            validate_key(after, key_format=TEXT_KEYS)
        except InvalidArgument:
            raise InvalidArgument("invalid cursor") from None
    try:
        bucket = store.bucket_get(name=items_bucket(account))
    except BucketNotFound:
        return ItemPage(items=[], next_cursor=None)
    rows = store.live_entries(bucket=bucket, prefix=prefix or None, after=after)
    entries = list(rows.only("key", "revision", "expires_at", "created_at")[: limit + 1])
    items = [
        Item(key=entry.key, version=str(entry.revision), expires_at=entry.expires_at, updated_at=entry.created_at)
        for entry in entries[:limit]
    ]
    next_cursor = store.encode_cursor(items[-1].key) if len(entries) > limit else None
    return ItemPage(items=items, next_cursor=next_cursor)


def items_usage(*, account: str) -> ItemsUsage:
    """Keys and bytes the account holds, against its limits.

    ``keys`` is the bucket's live-key counter, the figure the quota checks: a key
    that expired counts until ``manage.py kv_sweep`` removes it.
    """
    try:
        bucket: Bucket | None = store.bucket_get(name=items_bucket(account))
    except BucketNotFound:
        bucket = None
    return ItemsUsage(
        account=account,
        keys=bucket.live_keys if bucket else 0,
        max_keys=bucket.max_keys if bucket else settings.KV_ITEMS_MAX_KEYS,
        bytes=bucket.bytes_total if bucket else 0,
        max_value_bytes=settings.KV_ITEMS_MAX_VALUE_BYTES,
    )
