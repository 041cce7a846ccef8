"""Whether a principal authenticated earlier still stands: what an open watch and a redeemed ticket check.

A request is authenticated once and done; a watch lives for hours and a ticket for
``KV_WATCH_TICKET_SECONDS``, so both keep what they were authenticated as
(``Authenticated``) and ask ``principal_revalidate`` again: on each heartbeat of a watch
(``buckets/watch/consumer.py``) and when a ticket is redeemed (``tickets.ticket_redeem``).
"""

from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.crypto import constant_time_compare

from buckets.core.exceptions import Unauthenticated
from kvsite.access.apikeys import apikey_principal
from kvsite.access.authentication import principal_for_user
from kvsite.access.permissions import Principal


@dataclass(frozen=True)
class Authenticated:
    """A principal and the session it signed in with (``""``: none, an API key), to be checked again later."""

    principal: Principal
    session_key: str = ""


def principal_revalidate(*, principal: Principal, session_key: str = "") -> Principal:
    """``principal`` as it stands now; Unauthenticated if it no longer stands for anyone the API serves.

    An API key stands until it is revoked (seen within ``KV_API_KEY_CACHE_SECONDS``: its lookup
    is cached as a token's is) or expires (at once). A staff user stands while the account
    exists, is active and is staff; with ``session_key``, only while that session still holds
    the user's sign-in too: a logout, an expired session, another user's sign-in or a password
    change ends it (Django's own session check, without the side effects of ``get_user``).
    Permissions and scopes are re-read, so the caller can decide its access again.
    """
    if principal.kind == "api_key":
        return apikey_principal(api_key_id=principal.id)
    if principal.kind != "user":
        raise Unauthenticated("unknown principal")
    if session_key:
        user = _session_user(session_key)
        if user is None or user.pk != principal.id:
            raise Unauthenticated("the session was signed out, or its user may no longer sign in")
    else:
        user = _user(principal.id)
        if user is None:
            raise Unauthenticated("the user no longer exists")
    if not user.is_active or not getattr(user, "is_staff", False):
        raise Unauthenticated("the user is no longer active staff")
    return principal_for_user(user)


def _user(user_id: int) -> AbstractBaseUser | None:
    return get_user_model()._default_manager.filter(pk=user_id).first()


def _session_user(session_key: str) -> AbstractBaseUser | None:
    """The user signed in to session ``session_key``, if it still is; as ``django.contrib.auth.get_user``, read-only.

    ``get_user`` would flush a session that fails its check and re-key one signed with a
    fallback secret (logging the browser out): a background re-check only reads.
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id, backend_path = session.get(SESSION_KEY), session.get(BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(get_user_model()._meta.pk.to_python(user_id))
    if not isinstance(user, AbstractBaseUser):
        return None
    session_hash = session.get(HASH_SESSION_KEY) or ""
    hashes = (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    if not session_hash or not any(constant_time_compare(session_hash, known) for known in hashes):
        return None
    return user
