"""API keys: issued once, stored as a hash, checked on every request."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from buckets.core.exceptions import InvalidArgument, Unauthenticated
from kvsite.access import apikeys
from kvsite.models import ApiKey

pytestmark = pytest.mark.django_db


def run_createapikey(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("createapikey", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def test_createapikey_prints_the_token_last_and_stores_only_its_hash() -> None:
    token = run_createapikey("ci", "--role", "writer", "--buckets", "orders-*")[-1]

    stored = ApiKey.objects.get(name="ci")
    assert token.startswith("kvs_") and len(token) > 40
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {stored.token_hash, stored.prefix} and token.startswith(stored.prefix)
    assert (stored.role, stored.bucket_pattern) == ("writer", "orders-*")


def test_createapikey_token_authenticates() -> None:
    token = run_createapikey("ci", "--role", "reader")[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get("/api/v1/kv/buckets").status_code == 200


def test_createapikey_rejects_unknown_roles() -> None:
    with pytest.raises(CommandError):
        run_createapikey("ci", "--role", "root")


def test_apikey_create_validates_name_and_role() -> None:
    with pytest.raises(InvalidArgument):
        apikeys.apikey_create(name="", role="admin")
    with pytest.raises(InvalidArgument):
        apikeys.apikey_create(name="x", role="owner")


def test_authentication_records_last_use_and_caches_the_lookup(django_assert_num_queries) -> None:
    issued = apikeys.apikey_create(name="x", role="reader")

    principal = apikeys.apikey_authenticate(token=issued.token)
    with django_assert_num_queries(0):
        assert apikeys.apikey_authenticate(token=issued.token) == principal
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at is not None
    assert principal.name == "x" and "kv-entry:write" not in principal.permissions


def test_revocation_takes_effect_at_once_in_this_process() -> None:
    issued = apikeys.apikey_create(name="x", role="admin")
    apikeys.apikey_authenticate(token=issued.token)

    apikeys.apikey_revoke(api_key_id=issued.api_key.pk)

    with pytest.raises(Unauthenticated):
        apikeys.apikey_authenticate(token=issued.token)


def test_a_cached_key_still_expires_on_time() -> None:
    issued = apikeys.apikey_create(name="x", role="admin", expires_at=timezone.now() + timedelta(milliseconds=300))
    apikeys.apikey_authenticate(token=issued.token)
    ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    apikeys._cache.clear()

    with pytest.raises(Unauthenticated):
        apikeys.apikey_authenticate(token=issued.token)


def test_ensure_local_admin_prints_credentials_only_once() -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("ensure_local_admin", stdout=first)
    call_command("ensure_local_admin", stdout=second)

    assert "password:" in first.getvalue() and "kvs_" in first.getvalue()
    assert "password:" not in second.getvalue() and "kvs_" not in second.getvalue()
