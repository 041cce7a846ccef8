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
from kvsite.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db


def run_createapikey(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("createapikey", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


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

    assert first.getvalue().count("(shown once)") == 1 and "(admin, shown once)" in first.getvalue()
    assert "kvs_" in first.getvalue()
    assert "shown once" not in second.getvalue() and "kvs_" not in second.getvalue()
    assert "changepassword admin" in second.getvalue()


# --- createapikey --expires, revokeapikey, listapikeys ---------------------------------------


def test_createapikey_expires_after_a_lifetime_or_on_a_date() -> None:
    run_createapikey("short", "--role", "reader", "--expires", "12h")
    run_createapikey("dated", "--role", "reader", "--expires", "2099-01-01")

    short = ApiKey.objects.get(name="short").expires_at - timezone.now()
    assert timedelta(hours=11, minutes=59) < short <= timedelta(hours=12)
    assert ApiKey.objects.get(name="dated").expires_at.isoformat() == "2099-01-01T00:00:00+00:00"


@pytest.mark.parametrize(("expires", "says"), [("2001-01-01", "is in the past"), ("tomorrow", "give a lifetime")])
def test_createapikey_refuses_a_past_or_malformed_expiry(expires: str, says: str) -> None:
    with pytest.raises(CommandError, match=says):
        run_createapikey("x", "--role", "reader", "--expires", expires)

    assert not ApiKey.objects.filter(name="x").exists()


def test_createapikey_help_lists_roles_permissions_kinds_and_expiry() -> None:
    from kvsite.management.commands.createapikey import Command

    text = Command().create_parser("manage.py", "createapikey").format_help()

    for word in ("kv-secret:read", "apikeys:manage", "metrics:read", "config:<environment>", "--expires", "30d"):
        assert word in text
    assert "  admin    every permission" in text and "  none     only those given with --permission" in text
    assert "listapikeys, revokeapikey" in text


def test_revokeapikey_by_name_or_prefix_is_audited() -> None:
    by_name = apikeys.apikey_create(name="ci", role="reader")
    by_prefix = apikeys.apikey_create(name="deploy", role="writer")

    assert "Revoked reader key 'ci'" in run("revokeapikey", "ci")
    assert "Revoked writer key 'deploy'" in run("revokeapikey", by_prefix.api_key.prefix)

    for issued in (by_name, by_prefix):
        with pytest.raises(Unauthenticated):
            apikeys.apikey_authenticate(token=issued.token)
    event = AuditEvent.objects.filter(action="DELETE", namespace="apikeys").latest("id")
    assert (event.actor_type, event.actor_name, event.key_path, event.success) == (
        "system",
        "revokeapikey",
        "deploy",
        True,
    )


def test_revokeapikey_by_the_whole_token() -> None:
    leaked = apikeys.apikey_create(name="leaked", role="admin")

    run("revokeapikey", leaked.token)

    assert ApiKey.objects.get(name="leaked").revoked_at is not None


def test_revokeapikey_refuses_an_ambiguous_name_listing_the_candidates() -> None:
    first = apikeys.apikey_create(name="ci", role="reader").api_key
    second = apikeys.apikey_create(name="ci", role="writer").api_key

    with pytest.raises(CommandError) as refused:
        run("revokeapikey", "ci")
    with pytest.raises(CommandError, match="fits 2 active keys"):
        run("revokeapikey", "kvs_")

    assert "fits 2 active keys" in str(refused.value)
    assert first.prefix in str(refused.value) and second.prefix in str(refused.value)
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
    run("revokeapikey", second.prefix)
    assert "Revoked reader key 'ci'" in run("revokeapikey", "ci")  # the one left active


def test_revokeapikey_says_when_nothing_matches() -> None:
    issued = apikeys.apikey_create(name="gone", role="reader")
    apikeys.apikey_revoke(api_key_id=issued.api_key.pk)

    with pytest.raises(CommandError, match="names only revoked keys"):
        run("revokeapikey", "gone")
    with pytest.raises(CommandError, match="no API key is named 'nobody'"):
        run("revokeapikey", "nobody")
    with pytest.raises(CommandError, match="no API key"):
        run("revokeapikey", issued.api_key.prefix.swapcase())  # prefixes are case-sensitive


def test_listapikeys_shows_what_keys_may_do_never_their_tokens() -> None:
    issued = apikeys.apikey_create(
        name="ci", role="none", permissions=["metrics:read"], scopes=["bucket:a-*"], expires_at=None
    )
    apikeys.apikey_create(name="everything", role="admin")
    revoked = apikeys.apikey_create(name="old", role="reader")
    apikeys.apikey_revoke(api_key_id=revoked.api_key.pk)

    lines = run("listapikeys").splitlines()
    active = run("listapikeys", "--active")

    assert lines[0].split() == [
        "name",
        "prefix",
        "role",
        "permissions",
        "scopes",
        "account",
        "created",
        "last",
        "used",
        "expires",
        "revoked",
    ]
    ci = next(line for line in lines if line.startswith("ci "))
    assert issued.api_key.prefix in ci and "metrics:read" in ci and "bucket:a-*" in ci and "key-" in ci
    assert "(all)" in next(line for line in lines if line.startswith("everything "))
    assert [line.split()[0] for line in lines[1:]] == ["everything", "ci", "old"]
    assert "old " not in active and "ci " in active
    for key in (issued, revoked):
        assert key.token not in "".join(lines) and key.api_key.token_hash not in "".join(lines)


def test_createapikey_is_audited_as_the_command() -> None:
    run_createapikey("ci", "--role", "writer", "--scope", "config:prod", "--permission", "metrics:read")

    event = AuditEvent.objects.filter(namespace="apikeys").latest("id")
    assert (event.action, event.actor_type, event.actor_name, event.key_path) == (
        "WRITE",
        "system",
        "createapikey",
        "ci",
    )
    assert "role writer; permissions metrics:read; scopes config:prod" in event.detail
