"""The API keys page: list (prefix, role, last use), create (token shown once), revoke; both audited.

Creating is Post/Redirect/Get: the new token waits in the session for the page the
redirect leads to, which takes it out as it shows it. Reloading that page shows no
token and issues no second key; the token is never in a URL. In the session (a database
row, or Redis) it is sealed under the master key for this user, and it is dropped unshown
after ``ISSUED_SHOWN_WITHIN`` seconds: a session row never holds a usable token.
"""

import base64
import time
from datetime import UTC

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from buckets.core.exceptions import DomainError
from buckets.core.sealing import value_open, value_seal
from kvsite.access.apikeys import apikey_create, apikey_revoke
from kvsite.access.guard import APIKEYS, Need, whole
from kvsite.access.permissions import APIKEYS_MANAGE

from . import selectors
from .access import dashboard_actor, dashboard_view
from .forms import ApiKeyCreateForm, ApiKeyRevokeForm

MANAGE = Need(APIKEYS_MANAGE, resource=whole(APIKEYS))
# The session entry holding a just-issued key's name and sealed token until the next page shows them.
ISSUED_SESSION_KEY = "dashboard_issued_api_key"
ISSUED_SHOWN_WITHIN = 300
# What the token is sealed for: opened only for the user it was issued to (sealing.value_seal's place).
ISSUED_SEALED_FOR = "dashboard-issued-api-key"


def _issued_keep(request: HttpRequest, *, name: str, token: str) -> None:
    sealed = value_seal(plaintext=token.encode(), bucket=ISSUED_SEALED_FOR, key=str(request.user.pk))
    request.session[ISSUED_SESSION_KEY] = {
        "name": name,
        "sealed": base64.b64encode(sealed).decode(),
        "at": time.time(),
    }


def _issued_take(request: HttpRequest) -> dict | None:
    """The key issued just before, once: its name and token; None if there is none, or it waited too long."""
    kept = request.session.pop(ISSUED_SESSION_KEY, None)
    if not isinstance(kept, dict) or time.time() - kept.get("at", 0) > ISSUED_SHOWN_WITHIN:
        return None
    try:
        sealed = base64.b64decode(kept["sealed"])
        token = value_open(envelope=sealed, bucket=ISSUED_SEALED_FOR, key=str(request.user.pk)).decode()
    except (KeyError, ValueError, DomainError):
        return None
    return {"name": kept.get("name", ""), "token": token}


@dashboard_view({"GET": MANAGE, "POST": MANAGE})
def apikey_index(request: HttpRequest) -> HttpResponse:
    """Every key; POST issues one, then redirects to this page, which shows its token once."""
    form = ApiKeyCreateForm(request.POST or None)
    issued = _issued_take(request) if request.method == "GET" else None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        expires_at = data["expires_at"]
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        try:
            created = apikey_create(
                name=data["name"],
                role=data["role"],
                scopes=[f"bucket:{data['bucket_pattern']}"] if data["bucket_pattern"] else [],
                expires_at=expires_at,
                account=data["account"].strip() or None,
                actor=dashboard_actor(request),
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            _issued_keep(request, name=created.api_key.name, token=created.token)
            return redirect("dashboard:api-keys")
    return render(
        request,
        "dashboard/apikeys/index.html",
        {
            "keys": selectors.api_keys(),
            "form": form,
            "issued": issued,
            "open_create": request.method == "POST",
        },
    )


@dashboard_view({"POST": MANAGE})
def apikey_revoke_view(request: HttpRequest) -> HttpResponse:
    form = ApiKeyRevokeForm(request.POST)
    if form.is_valid():
        api_key = apikey_revoke(api_key_id=form.cleaned_data["api_key_id"], actor=dashboard_actor(request))
        messages.success(request, f"API key {api_key.name} ({api_key.prefix}…) revoked.")
    else:
        messages.error(request, "No key was named; nothing was revoked.")
    return redirect("dashboard:api-keys")
