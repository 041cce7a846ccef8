"""kvsite.access.revalidation: whether a principal authenticated earlier still stands, rule by rule."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from buckets.core.exceptions import Unauthenticated
from kvsite.access import apikeys
from kvsite.access.authentication import principal_for_user
from kvsite.access.guard import Scope
from kvsite.access.permissions import Principal
from kvsite.access.revalidation import principal_revalidate
from kvsite.models import ApiKey

pytestmark = pytest.mark.django_db


def key_principal(**options: object) -> tuple[int, Principal]:
    issued = apikeys.apikey_create(name="k", role="reader", **options)
    return issued.api_key.pk, apikeys.apikey_authenticate(token=issued.token)


def staff(username: str = "ops") -> AbstractUser:
    return get_user_model().objects.create_user(username, password="pw-1", is_staff=True)


def signed_in(user: AbstractUser) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.session.session_key


# --- API keys ---------------------------------------------------------------------------------


def test_a_key_stands_until_revoked_and_a_revocation_here_is_seen_at_once() -> None:
    key_id, principal = key_principal()
    assert principal_revalidate(principal=principal) == principal

    apikeys.apikey_revoke(api_key_id=key_id)

    with pytest.raises(Unauthenticated, match="revoked"):
        principal_revalidate(principal=principal)


def test_a_revocation_elsewhere_is_seen_once_the_cached_lookup_is_older_than_the_cache_seconds(
    settings, django_assert_num_queries
) -> None:
    settings.KV_API_KEY_CACHE_SECONDS = 0.3
    key_id, principal = key_principal()
    principal_revalidate(principal=principal)
    # Another process revokes it: this one's cache is not cleared.
    ApiKey.objects.filter(pk=key_id).update(revoked_at=timezone.now())

    with django_assert_num_queries(0):
        assert principal_revalidate(principal=principal) == principal
    time.sleep(0.35)

    with pytest.raises(Unauthenticated, match="revoked"):
        principal_revalidate(principal=principal)


def test_an_expiry_is_seen_at_once_even_from_the_cache(django_assert_num_queries) -> None:
    _, principal = key_principal(expires_at=timezone.now() + timedelta(milliseconds=300))
    principal_revalidate(principal=principal)
    time.sleep(0.35)

    with django_assert_num_queries(0), pytest.raises(Unauthenticated, match="expired"):
        principal_revalidate(principal=principal)


def test_a_deleted_key_no_longer_stands() -> None:
    key_id, principal = key_principal()
    ApiKey.objects.filter(pk=key_id).delete()

    with pytest.raises(Unauthenticated):
        principal_revalidate(principal=principal)


def test_a_key_stands_as_it_is_now_so_its_access_can_be_decided_again() -> None:
    key_id, principal = key_principal(scopes=["bucket:app*"])
    ApiKey.objects.filter(pk=key_id).update(scopes=["bucket:other"], permissions=["kv-audit:read"])

    now = principal_revalidate(principal=principal)

    assert now.scopes == (Scope("bucket", "other"),)
    assert "kv-audit:read" in now.permissions and "kv-audit:read" not in principal.permissions


# --- Staff users, without a session (a ticket of the previous release) --------------------------------


@pytest.mark.parametrize(
    ("change", "stands"),
    [({}, True), ({"is_staff": False}, False), ({"is_active": False}, False)],
    ids=["unchanged", "no longer staff", "deactivated"],
)
def test_a_staff_user_stands_while_active_staff(change: dict[str, bool], stands: bool) -> None:
    user = staff()
    principal = principal_for_user(user)
    get_user_model().objects.filter(pk=user.pk).update(**change)

    if stands:
        assert principal_revalidate(principal=principal) == principal
    else:
        with pytest.raises(Unauthenticated, match="no longer active staff"):
            principal_revalidate(principal=principal)


def test_a_deleted_user_no_longer_stands() -> None:
    user = staff()
    principal = principal_for_user(user)
    user.delete()

    with pytest.raises(Unauthenticated, match="no longer exists"):
        principal_revalidate(principal=principal)


# --- Staff users, with the session they signed in with ------------------------------------------------


def test_a_session_stands_until_signed_out() -> None:
    user = staff()
    client, session_key = signed_in(user)
    principal = principal_for_user(user)
    assert principal_revalidate(principal=principal, session_key=session_key) == principal

    client.logout()

    with pytest.raises(Unauthenticated, match="signed out"):
        principal_revalidate(principal=principal, session_key=session_key)


def test_an_expired_session_no_longer_stands() -> None:
    user = staff()
    _, session_key = signed_in(user)
    Session.objects.filter(session_key=session_key).update(expire_date=timezone.now() - timedelta(seconds=1))

    with pytest.raises(Unauthenticated):
        principal_revalidate(principal=principal_for_user(user), session_key=session_key)


def test_a_session_stands_for_the_user_signed_in_to_it_only() -> None:
    ops, other = staff("ops"), staff("other")
    _, session_key = signed_in(other)

    with pytest.raises(Unauthenticated):
        principal_revalidate(principal=principal_for_user(ops), session_key=session_key)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"is_staff": False}, "no longer active staff"), ({"is_active": False}, "signed out")],
    ids=["no longer staff", "deactivated"],
)
def test_a_session_of_a_user_no_longer_active_staff_no_longer_stands(change: dict[str, bool], message: str) -> None:
    user = staff()
    _, session_key = signed_in(user)
    get_user_model().objects.filter(pk=user.pk).update(**change)

    with pytest.raises(Unauthenticated, match=message):
        principal_revalidate(principal=principal_for_user(user), session_key=session_key)


def test_a_password_change_ends_the_sessions_signed_in_before() -> None:
    user = staff()
    _, session_key = signed_in(user)
    user.set_password("pw-2")
    user.save()

    with pytest.raises(Unauthenticated, match="signed out"):
        principal_revalidate(principal=principal_for_user(user), session_key=session_key)


def test_a_session_signed_with_a_fallback_secret_stands_and_is_left_as_it_is(settings) -> None:
    user = staff()
    _, session_key = signed_in(user)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-of-at-least-fifty-characters-long"
    stored = Session.objects.get(session_key=session_key).session_data

    assert principal_revalidate(principal=principal_for_user(user), session_key=session_key)
    # Django's get_user would re-key it (signing the browser out): a re-check only reads.
    assert Session.objects.get(session_key=session_key).session_data == stored
