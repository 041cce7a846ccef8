"""Sealing secret values with AES-256-GCM under rotatable master keys.

Envelope (version 1), the bytes stored as the entry's value::

    offset  size  field
    0       1     format version, 0x01
    1       1     n = length of the master-key id (1-32)
    2       n     master-key id, ASCII
    2+n     12    nonce, fresh from os.urandom for every seal
    14+n    rest  AES-GCM ciphertext followed by its 16-byte tag

The associated data is ``b"kvsite-secret\\0" + header + b"\\0" + bucket + b"\\0" + key``
(header = the first 2+n bytes), so a ciphertext only opens at the (bucket, key)
it was sealed for, and its version byte and key id cannot be altered either.
Neither bucket names nor keys can contain NUL, so the encoding is unambiguous.
Nothing else about the value (no hash, no length field) is stored.
"""

import functools
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from buckets.core.exceptions import MasterKeyMissing, SealedValueUnreadable
from buckets.core.masterkeys import MasterKey, master_keys_parse

VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_AD_PREFIX = b"kvsite-secret\x00"


@dataclass(frozen=True)
class Keyring:
    primary: MasterKey
    by_id: dict[str, MasterKey]


@functools.lru_cache(maxsize=8)
def _keyring(raw: str) -> Keyring:
    keys = master_keys_parse(raw=raw)
    if not keys:
        raise MasterKeyMissing("no master key is configured (KV_MASTER_KEYS)")
    return Keyring(primary=keys[0], by_id={key.id: key for key in keys})


def keyring_current() -> Keyring:
    """The configured keys; re-parsed only when the setting changes (tests override it)."""
    return _keyring(settings.KV_MASTER_KEYS)


@functools.lru_cache(maxsize=16)
def _cipher(key: MasterKey) -> AESGCM:
    return AESGCM(key.key)


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes((VERSION, len(encoded))) + encoded


def _associated_data(header: bytes, bucket: str, key: str) -> bytes:
    return _AD_PREFIX + header + b"\x00" + bucket.encode() + b"\x00" + key.encode()


@dataclass(frozen=True)
class Envelope:
    header: bytes
    key_id: str
    nonce: bytes
    ciphertext: bytes


def envelope_parse(*, envelope: bytes | memoryview) -> Envelope:
    """Split a stored envelope; SealedValueUnreadable if it is not one."""
    envelope = bytes(envelope)  # PostgreSQL hands BinaryField values over as memoryview
    if len(envelope) < 2 or envelope[0] != VERSION:
        raise SealedValueUnreadable("stored secret is not a version-1 envelope")
    id_length = envelope[1]
    body_start = 2 + id_length
    if not 1 <= id_length <= 32 or len(envelope) < body_start + NONCE_BYTES + TAG_BYTES:
        raise SealedValueUnreadable("stored secret envelope is truncated")
    try:
        key_id = envelope[2:body_start].decode("ascii")
    except UnicodeDecodeError:
        raise SealedValueUnreadable("stored secret envelope has a corrupt key id") from None
    return Envelope(
        header=envelope[:body_start],
        key_id=key_id,
        nonce=envelope[body_start : body_start + NONCE_BYTES],
        ciphertext=envelope[body_start + NONCE_BYTES :],
    )


def envelope_key_id(*, envelope: bytes | memoryview) -> str | None:
    """The id of the master key that sealed ``envelope``; None if it is not an envelope."""
    try:
        return envelope_parse(envelope=envelope).key_id
    except SealedValueUnreadable:
        return None


def value_seal(*, plaintext: bytes, bucket: str, key: str) -> bytes:
    """Seal ``plaintext`` for (bucket, key) under the first master key."""
    master = keyring_current().primary
    header = _header(master.id)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = _cipher(master).encrypt(nonce, plaintext, _associated_data(header, bucket, key))
    return header + nonce + ciphertext


def value_open(*, envelope: bytes | memoryview, bucket: str, key: str) -> bytes:
    """Open an envelope sealed for (bucket, key).

    SealedValueUnreadable when it was altered or sealed for another place;
    MasterKeyMissing when its master key is no longer configured.
    """
    parsed = envelope_parse(envelope=envelope)
    master = keyring_current().by_id.get(parsed.key_id)
    if master is None:
        raise MasterKeyMissing(f"the value is sealed under master key {parsed.key_id!r}, which is not configured")
    try:
        return _cipher(master).decrypt(parsed.nonce, parsed.ciphertext, _associated_data(parsed.header, bucket, key))
    except InvalidTag:
        raise SealedValueUnreadable(
            "stored secret failed authentication (altered, or not sealed for this name)"
        ) from None


def value_reseal(*, envelope: bytes | memoryview, bucket: str, key: str, new_key: str | None = None) -> bytes:
    """Open and seal again under the first master key (and, for a rename, for ``new_key``)."""
    plaintext = value_open(envelope=envelope, bucket=bucket, key=key)
    return value_seal(plaintext=plaintext, bucket=bucket, key=new_key or key)
