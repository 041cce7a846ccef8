"""Sealing: AES-256-GCM envelopes bound to their (bucket, key), under rotatable master keys."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from buckets.core import sealing
from buckets.core.exceptions import MasterKeyMissing, SealedValueUnreadable
from buckets.core.masterkeys import master_keys_parse

from .conftest import KEY_NEW, KEY_OLD

BUCKET = "SYS_secrets_prod"


def seal(plaintext: bytes = b"s3cret", *, bucket: str = BUCKET, key: str = "db/password") -> bytes:
    return sealing.value_seal(plaintext=plaintext, bucket=bucket, key=key)


def test_round_trip() -> None:
    for plaintext in (b"", b"s3cret", "pässwörd ✓".encode(), bytes(range(256)) * 100):
        envelope = seal(plaintext)

        assert sealing.value_open(envelope=envelope, bucket=BUCKET, key="db/password") == plaintext


def test_envelope_layout_is_version_key_id_nonce_ciphertext_and_tag() -> None:
    envelope = seal(b"s3cret")

    assert envelope[0] == 1
    assert envelope[1] == len("old")
    assert envelope[2:5] == b"old"
    assert len(envelope) == 2 + 3 + 12 + len(b"s3cret") + 16
    assert b"s3cret" not in envelope


def test_nonces_are_unique_over_many_encryptions() -> None:
    envelopes = [seal(b"same plaintext") for _ in range(20_000)]

    nonces = {envelope[5:17] for envelope in envelopes}
    assert len(nonces) == len(envelopes)
    assert len(set(envelopes)) == len(envelopes)


@pytest.mark.parametrize("position", range(0, 2 + 3 + 12 + 6 + 16))
def test_any_altered_byte_fails_to_open(position: int) -> None:
    envelope = bytearray(seal(b"s3cret"))
    envelope[position] ^= 0x01

    with pytest.raises((SealedValueUnreadable, MasterKeyMissing)):
        sealing.value_open(envelope=bytes(envelope), bucket=BUCKET, key="db/password")


def test_truncated_or_foreign_bytes_fail_cleanly() -> None:
    for junk in (b"", b"\x01", seal()[:20], b"plain text that was never sealed"):
        with pytest.raises(SealedValueUnreadable):
            sealing.value_open(envelope=junk, bucket=BUCKET, key="db/password")


def test_a_ciphertext_only_opens_where_it_was_sealed() -> None:
    envelope = seal(b"s3cret", key="a")

    with pytest.raises(SealedValueUnreadable):
        sealing.value_open(envelope=envelope, bucket=BUCKET, key="b")
    with pytest.raises(SealedValueUnreadable):
        sealing.value_open(envelope=envelope, bucket="SYS_secrets_staging", key="a")


def test_swapped_ciphertexts_fail() -> None:
    first, second = seal(b"one", key="first"), seal(b"two", key="second")

    with pytest.raises(SealedValueUnreadable):
        sealing.value_open(envelope=second, bucket=BUCKET, key="first")
    with pytest.raises(SealedValueUnreadable):
        sealing.value_open(envelope=first, bucket=BUCKET, key="second")


def test_the_first_key_seals_and_every_key_opens() -> None:
    sealed_old = seal(b"s3cret")

    with override_settings(KV_MASTER_KEYS=f"{KEY_NEW},{KEY_OLD}"):
        sealed_new = seal(b"s3cret")
        assert sealing.envelope_key_id(envelope=sealed_new) == "new"
        assert sealing.value_open(envelope=sealed_old, bucket=BUCKET, key="db/password") == b"s3cret"

    with override_settings(KV_MASTER_KEYS=KEY_NEW):
        assert sealing.value_open(envelope=sealed_new, bucket=BUCKET, key="db/password") == b"s3cret"
        with pytest.raises(MasterKeyMissing, match="'old'"):
            sealing.value_open(envelope=sealed_old, bucket=BUCKET, key="db/password")


def test_reseal_moves_a_value_to_the_first_key_and_optionally_a_new_name() -> None:
    sealed = seal(b"s3cret")

    with override_settings(KV_MASTER_KEYS=f"{KEY_NEW},{KEY_OLD}"):
        resealed = sealing.value_reseal(envelope=sealed, bucket=BUCKET, key="db/password", new_key="db/pw")

        assert sealing.envelope_key_id(envelope=resealed) == "new"
        assert sealing.value_open(envelope=resealed, bucket=BUCKET, key="db/pw") == b"s3cret"


def test_a_key_id_cannot_be_swapped_for_another_configured_one() -> None:
    # Same id length, so the layout stays valid: only the associated data can catch it.
    other = "oth:" + base64.b64encode(bytes(32)).decode()
    with override_settings(KV_MASTER_KEYS=f"{KEY_OLD},{other}"):
        envelope = bytearray(seal(b"s3cret"))
        envelope[2:5] = b"oth"

        with pytest.raises(SealedValueUnreadable):
            sealing.value_open(envelope=bytes(envelope), bucket=BUCKET, key="db/password")


# --- Parsing KV_MASTER_KEYS --------------------------------------------------------------


def test_keys_parse_in_order_and_hide_their_material() -> None:
    keys = master_keys_parse(raw=f" {KEY_NEW} , {KEY_OLD},")

    assert [key.id for key in keys] == ["new", "old"]
    assert len(keys[0].key) == 32
    assert KEY_NEW.split(":")[1] not in repr(keys)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("no-separator", "not 'id:base64"),
        ("bad id!:" + base64.b64encode(bytes(32)).decode(), "invalid id"),
        ("k1:not base64!!", "not valid base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "16 bytes"),
        (f"{KEY_OLD},{KEY_OLD}", "appears twice"),
    ],
)
def test_malformed_keys_are_named_without_their_material(raw: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        master_keys_parse(raw=raw)

    material = raw.partition(":")[2]
    assert not material or material not in str(error.value)


def test_using_no_key_at_all_is_a_clear_error() -> None:
    with override_settings(KV_MASTER_KEYS=""), pytest.raises(MasterKeyMissing):
        seal()
