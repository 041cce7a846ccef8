"""Secrets pages: environments, their secrets (values masked), reveal, rotate, roll back, delete.

Everything goes through ``secrets_app`` services with the signed-in user as the
audit actor, so listings, reveals and changes are all in the audit log. A value
is only ever in the response to an explicit reveal (a POST), never cached.
"""

import re
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from buckets.core.exceptions import DomainError
from buckets.core.names import SYS_SECRETS_PREFIX
from kvsite.access.guard import SECRETS, Call, Need, Resource
from kvsite.access.permissions import SECRET_READ, SECRET_WRITE
from kvsite.http.bodies import body_limit
from secrets_app import services, versions
from secrets_app.exceptions import SecretExists

from . import selectors
from .access import dashboard_actor, dashboard_principal, dashboard_view
from .forms import RevisionForm, SecretCreateForm, SecretDescribeForm, SecretRotateForm

# A value of the largest size, form-encoded (up to 3 body bytes a byte), and the other fields.
SECRET_FORM_BODY_BYTES = 4 * services.MAX_SECRET_BYTES + 4 * 1024


def _environment_listed(call: Call) -> Resource:
    """The environment the index shows: ``?env=``, else the first one there is (none yet: secrets as a whole)."""
    environments = selectors.secret_environments()
    environment = call.query.get("env") or (environments[0] if environments else "")
    return Resource(SECRETS, services.environment_checked(environment)) if environment else Resource(SECRETS)


def _environment_created_in(call: Call) -> Resource:
    """The environment the create form names."""
    return Resource(SECRETS, services.environment_checked(call.form.get("environment", "")))


def _environment_of_secret(call: Call) -> Resource:
    return Resource(SECRETS, services.environment_checked(str(call.kwargs["environment"])))


SECRET_WRITE_NEED = Need(SECRET_WRITE, resource=_environment_of_secret)


def _secret_url(environment: str, name: str, **query) -> str:
    url = reverse("dashboard:secret", kwargs={"environment": environment, "name": name})
    return f"{url}?{urlencode(query)}" if query else url


def _dom_id(raw: str) -> str:
    """The page element a reveal answers into (echoed back, so only plain characters)."""
    return re.sub(r"[^A-Za-z0-9_-]", "", raw)[:32] or "main"


def _abilities(request: HttpRequest, environment: str) -> dict:
    principal = dashboard_principal(request)
    resource = Resource(SECRETS, environment)
    return {
        "can_reveal": principal.allows(SECRET_READ, resource),
        "can_write": principal.allows(SECRET_WRITE, resource),
    }


@body_limit(SECRET_FORM_BODY_BYTES)
@dashboard_view(
    {
        "GET": Need(SECRET_READ, SECRET_WRITE, resource=_environment_listed),
        "POST": Need(SECRET_WRITE, resource=_environment_created_in),
    }
)
def secret_index(request: HttpRequest) -> HttpResponse:
    """Environments and the chosen one's secrets (masked); POST creates a secret."""
    environments = selectors.secret_environments()
    # What was decided on: the environment shown, or the one the create form names (and is shown after it).
    environment = request.resource.name  # type: ignore[attr-defined]
    form = SecretCreateForm(request.POST or None, initial={"environment": environment or "production"})
    actor = dashboard_actor(request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            info = services.secret_create(
                environment=data["environment"],
                name=data["name"],
                value=data["value"],
                description=data["description"],
                actor=actor,
            )
        except SecretExists as error:
            form.add_error("name", error.message)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Secret {info.name} created in {data['environment']}.")
            return redirect(f"{reverse('dashboard:secrets')}?{urlencode({'env': data['environment']})}")
    secrets = []
    namespaces: list[str] = []
    namespace = request.GET.get("ns", "")
    if environment:
        infos = services.secret_list(environment=environment, actor=actor)
        # A secret's namespace is its name up to the first '/', as in db/password.
        namespaces = sorted({info.name.split("/", 1)[0] for info in infos if "/" in info.name})
        if namespace:
            infos = [info for info in infos if info.name.startswith(namespace + "/")]
        writers = selectors.last_writers(
            namespace=SYS_SECRETS_PREFIX + environment, names=[info.name for info in infos]
        )
        secrets = [{"info": info, "writer": writers.get(info.name)} for info in infos]
        if environment not in environments:
            environments = [*environments, environment]
    return render(
        request,
        "dashboard/secrets/index.html",
        {
            "environments": environments,
            "environment": environment,
            "secrets": secrets,
            "namespaces": namespaces,
            "namespace": namespace,
            "form": form,
            "open_create": request.method == "POST" or not environments,
            **(_abilities(request, environment) if environment else {}),
        },
    )


@body_limit(SECRET_FORM_BODY_BYTES)
@dashboard_view(
    {
        "GET": Need(SECRET_READ, SECRET_WRITE, resource=_environment_of_secret),
        "POST reveal": Need(SECRET_READ, resource=_environment_of_secret),
        "POST rotate": SECRET_WRITE_NEED,
        "POST describe": SECRET_WRITE_NEED,
        "POST rollback": SECRET_WRITE_NEED,
        "POST delete": SECRET_WRITE_NEED,
    }
)
def secret_detail(request: HttpRequest, environment: str, name: str) -> HttpResponse:
    """One secret: info and versions; POST reveals, rotates, describes, rolls back or deletes."""
    actor = dashboard_actor(request)
    action = request.POST.get("action") if request.method == "POST" else None
    revealed = None
    reveal_error = ""
    rotate_form = SecretRotateForm()
    if action == "reveal":
        try:
            revealed = services.secret_reveal(environment=environment, name=name, actor=actor)
        except DomainError as error:
            reveal_error = error.message
        if request.headers.get("HX-Request"):
            return render(
                request,
                "dashboard/secrets/_revealed.html",
                {
                    "environment": environment,
                    "name": name,
                    "revealed": revealed,
                    "reveal_error": reveal_error,
                    "dom_id": _dom_id(request.POST.get("dom_id", "")),
                },
            )
    elif action == "rotate":
        rotate_form = SecretRotateForm(request.POST)
        if rotate_form.is_valid():
            try:
                info = services.secret_update(
                    environment=environment, name=name, value=rotate_form.cleaned_data["value"], actor=actor
                )
            except DomainError as error:
                rotate_form.add_error(None, error.message)
            else:
                messages.success(request, f"{name} rotated: revision {info.revision} is the current value.")
                return redirect(_secret_url(environment, name))
    elif action == "describe":
        describe = SecretDescribeForm(request.POST)
        if describe.is_valid():
            services.secret_patch(
                environment=environment, name=name, description=describe.cleaned_data["description"], actor=actor
            )
            messages.success(request, "Description saved.")
            return redirect(_secret_url(environment, name))
    elif action == "rollback":
        form = RevisionForm(request.POST)
        if form.is_valid():
            revision = form.cleaned_data["revision"]
            info = versions.secret_rollback(environment=environment, name=name, revision=revision, actor=actor)
            messages.success(
                request, f"{name} rolled back to the value of revision {revision} (now revision {info.revision})."
            )
            return redirect(_secret_url(environment, name))
        messages.error(request, "Pick a version to roll back to.")
    elif action == "delete":
        services.secret_delete(environment=environment, name=name, actor=actor)
        messages.success(request, f"Secret {name} and all its versions were deleted.")
        return redirect(f"{reverse('dashboard:secrets')}?{urlencode({'env': environment})}")

    info = services.secret_info(environment=environment, name=name, actor=actor)
    kept = versions.secret_versions(environment=environment, name=name, actor=actor)
    namespace = SYS_SECRETS_PREFIX + environment
    writers = selectors.entry_writers(namespace=namespace, entry_ids=[version.entry_id for version in kept])
    return render(
        request,
        "dashboard/secrets/detail.html",
        {
            "environment": environment,
            "name": name,
            "info": info,
            "versions": [{"version": version, "writer": writers.get(version.entry_id)} for version in kept],
            "revealed": revealed,
            "reveal_error": reveal_error,
            "rotate_form": rotate_form,
            "describe_form": SecretDescribeForm(initial={"description": info.description}),
            "confirm_delete": request.GET.get("confirm") == "delete",
            **_abilities(request, environment),
        },
    )
