"""The API keys page: list (prefix, role, last use), create (token shown once), revoke; both audited."""

from datetime import UTC

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from buckets.core.exceptions import DomainError
from kvsite.access.apikeys import apikey_create, apikey_revoke
from kvsite.access.guard import APIKEYS, Need, whole
from kvsite.access.permissions import APIKEYS_MANAGE

from . import selectors
from .access import dashboard_actor, dashboard_view
from .forms import ApiKeyCreateForm, ApiKeyRevokeForm

MANAGE = Need(APIKEYS_MANAGE, resource=whole(APIKEYS))


@dashboard_view({"GET": MANAGE, "POST": MANAGE})
def apikey_index(request: HttpRequest) -> HttpResponse:
    """Every key; POST issues one and shows its token on this response only."""
    form = ApiKeyCreateForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        expires_at = data["expires_at"]
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        try:
            issued = apikey_create(
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
            form = ApiKeyCreateForm()
    return render(
        request,
        "dashboard/apikeys/index.html",
        {
            "keys": selectors.api_keys(),
            "form": form,
            "issued": issued,
            "open_create": request.method == "POST" and issued is None,
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
