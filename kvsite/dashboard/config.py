"""Config pages: environments and their documents, a validating JSON editor, feature-flag switches, history.

Writes go through ``buckets.configs.services``. A switch sends a one-field merge patch
(``config_patch`` re-applies it to a newer document, so it never overwrites
someone else's edit of another field); the editor saves the whole document
with compare-and-swap and shows both versions on a conflict.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from buckets.configs import services as configs
from buckets.core.exceptions import (
    DomainError,
    InvalidArgument,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    RevisionNotFound,
)
from buckets.core.names import SYS_CONFIG_PREFIX
from kvsite.access.guard import CONFIG, Call, Need, Resource
from kvsite.access.permissions import CONFIG_READ, CONFIG_WRITE
from kvsite.http.bodies import body_limit
from kvsite.http.jsonbody import dump_json

from . import selectors
from .access import dashboard_actor, dashboard_view
from .forms import CONFIG_TEXT_MAX_BYTES, NOTHING_SAVED, ConfigCreateForm, ConfigEditForm, ConfigFlagForm, RevisionForm
from .live import config_watch_url
from .values import pretty_json, value_diff


def _document_url(environment: str, name: str, **query) -> str:
    url = reverse("dashboard:config-document", kwargs={"environment": environment, "name": name})
    return f"{url}?{urlencode(query)}" if query else url


def _environment_listed(call: Call) -> Resource:
    """The environment the index shows: ``?env=``, else the first one there is (or the default)."""
    environments = selectors.config_environments()
    return _environment(call.query.get("env") or (environments[0] if environments else configs.DEFAULT_ENVIRONMENT))


def _environment_created_in(call: Call) -> Resource:
    """The environment the create form names."""
    return _environment(call.form.get("environment", ""))


def _environment_of_document(call: Call) -> Resource:
    return _environment(str(call.kwargs["environment"]))


def _environment(environment: str) -> Resource:
    configs.config_bucket(environment)  # InvalidArgument for a malformed id: scopes only ever see real names
    return Resource(CONFIG, environment)


DOCUMENT_READ = Need(CONFIG_READ, resource=_environment_of_document)
DOCUMENT_WRITE = Need(CONFIG_WRITE, resource=_environment_of_document)


def _flags(data: dict | None) -> list[tuple[str, bool]]:
    """Top-level boolean fields: the document's feature flags."""
    return [(field, value) for field, value in (data or {}).items() if isinstance(value, bool)]


@body_limit(CONFIG_TEXT_MAX_BYTES)
@dashboard_view(
    {
        "GET": Need(CONFIG_READ, resource=_environment_listed),
        "POST": Need(CONFIG_WRITE, resource=_environment_created_in),
    }
)
def config_index(request: HttpRequest) -> HttpResponse:
    """Environments and the documents of the chosen one; POST creates a document."""
    environments = selectors.config_environments()
    # What was decided on: the environment shown, or the one the create form names (and is shown after it).
    environment = request.resource.name  # type: ignore[attr-defined]
    form = ConfigCreateForm(request.POST or None, initial={"environment": environment})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            document = configs.config_set(
                environment=data["environment"],
                name=data["name"],
                data=data["data"],
                if_absent=True,
                actor=dashboard_actor(request),
            )
        except KeyExists as error:
            form.add_error("name", f"{error.message}; open it to edit it.")
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Created {document.name} (revision {document.revision}).")
            return redirect(_document_url(data["environment"], document.name))
    documents = configs.config_list(environment=environment)
    if environment not in environments:
        environments = [*environments, environment]
    return render(
        request,
        "dashboard/config/index.html",
        {
            "environments": environments,
            "environment": environment,
            "documents": documents,
            "form": form,
            "open_create": request.method == "POST",
        },
    )


def _document_context(environment: str, name: str, *, oob: bool = False) -> dict:
    """What the live panel and the history need; ``oob``: the history rides along out of band (htmx)."""
    document = configs.config_get(environment=environment, name=name)
    return {
        "environment": environment,
        "name": name,
        "document": document,
        # The page's script puts this text in the editor as it is: numbers never pass through a JS double.
        "document_text": pretty_json(document.data),
        "flags": _flags(document.data),
        "history": configs.config_history(environment=environment, name=name),
        "oob": oob,
    }


@body_limit(CONFIG_TEXT_MAX_BYTES)
@dashboard_view(
    {
        "GET": DOCUMENT_READ,
        "POST toggle": DOCUMENT_WRITE,
        "POST save": DOCUMENT_WRITE,
        "POST rollback": DOCUMENT_WRITE,
        "POST delete": DOCUMENT_WRITE,
    }
)
def config_document(request: HttpRequest, environment: str, name: str) -> HttpResponse:
    """One document: flags, editor, history; POST toggles a flag, saves, rolls back or deletes."""

    action = request.POST.get("action") if request.method == "POST" else None
    editor = None
    conflict = None
    if action == "toggle":
        response = _toggle(request, environment, name)
        if response is not None:
            return response
    elif action == "save":
        editor = ConfigEditForm(request.POST)
        if editor.is_valid():
            data = editor.cleaned_data
            if _stored_already(environment, name, data["data"]):
                messages.info(request, NOTHING_SAVED)
                return redirect(_document_url(environment, name))
            try:
                document = configs.config_set(
                    environment=environment,
                    name=name,
                    data=data["data"],
                    if_revision=data["revision"],
                    actor=dashboard_actor(request),
                )
            except RevisionMismatch:
                current = configs.config_get(environment=environment, name=name)
                conflict = {
                    "expected": data["revision"],
                    "current": current,
                    "current_text": pretty_json(current.data),
                    "mine_text": pretty_json(data["data"]),
                    "diff": value_diff(
                        pretty_json(current.data).encode(),
                        pretty_json(data["data"]).encode(),
                        old_label=f"revision {current.revision} (saved)",
                        new_label="your edit",
                    ),
                }
                editor = ConfigEditForm(initial={"data": pretty_json(data["data"]), "revision": current.revision})
            except DomainError as error:
                editor.add_error(None, error.message)
            else:
                messages.success(request, f"Saved {name} as revision {document.revision}.")
                return redirect(_document_url(environment, name))
    elif action == "rollback":
        form = RevisionForm(request.POST)
        if form.is_valid():
            document = configs.config_rollback(
                environment=environment,
                name=name,
                revision=form.cleaned_data["revision"],
                actor=dashboard_actor(request),
            )
            messages.success(
                request,
                f"Rolled {name} back to the data of revision {form.cleaned_data['revision']} "
                f"(now revision {document.revision}).",
            )
            return redirect(_document_url(environment, name))
        messages.error(request, "Pick a revision to roll back to.")
    elif action == "delete":
        form = RevisionForm(request.POST)
        if form.is_valid():
            try:
                configs.config_delete(
                    environment=environment,
                    name=name,
                    if_revision=form.cleaned_data["revision"],
                    actor=dashboard_actor(request),
                )
            except RevisionMismatch as error:
                messages.error(request, f"Someone else changed {name} meanwhile ({error.message}); it was not deleted.")
                return redirect(_document_url(environment, name))
            messages.success(request, f"Deleted {name}.")
            return redirect(f"{reverse('dashboard:config')}?{urlencode({'env': environment})}")

    live_part = request.GET.get("part") == "live" and request.headers.get("HX-Request")
    context = _document_context(environment, name, oob=bool(live_part))
    document = context["document"]
    if live_part:
        return render(request, "dashboard/config/_live.html", context)
    if editor is None:
        editor = ConfigEditForm(initial={"data": pretty_json(document.data), "revision": document.revision})
    context.update(
        editor=editor,
        conflict=conflict,
        shown=_shown_revision(request, environment, name, document),
        confirm_delete=request.GET.get("confirm") == "delete",
        watch_url=config_watch_url(environment=environment, name=name),
        bucket_group_name=SYS_CONFIG_PREFIX + environment,
    )
    return render(request, "dashboard/config/document.html", context)


def _stored_already(environment: str, name: str, data: dict) -> bool:
    """Whether saving ``data`` would store what the document holds now, byte for byte."""
    try:
        current = configs.config_get(environment=environment, name=name)
    except KeyNotFound:
        return False
    return dump_json(current.data) == dump_json(data)


def _shown_revision(request: HttpRequest, environment: str, name: str, document: configs.ConfigDocument) -> dict | None:
    raw = request.GET.get("rev")
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidArgument("revision must be a positive integer")
    try:
        old = configs.config_get(environment=environment, name=name, revision=int(raw))
    except RevisionNotFound as error:
        return {"error": error.message}
    return {
        "document": old,
        "text": pretty_json(old.data),
        "diff": value_diff(
            pretty_json(old.data).encode(),
            pretty_json(document.data).encode(),
            old_label=f"revision {old.revision}",
            new_label=f"revision {document.revision} (current)",
        ),
    }


def _toggle(request: HttpRequest, environment: str, name: str) -> HttpResponse | None:
    """Set one flag (a merge patch of one field); htmx gets the refreshed switches, a plain form a redirect."""
    form = ConfigFlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That switch sent nothing usable; nothing changed.")
        return None
    flag, value = form.cleaned_data["flag"], form.cleaned_data["value"]
    current = configs.config_get(environment=environment, name=name)
    if not isinstance((current.data or {}).get(flag), bool):
        messages.error(request, f"{flag} is not a feature flag of {name} any more; nothing changed.")
        return None
    try:
        document = configs.config_patch(
            environment=environment, name=name, patch={flag: value}, actor=dashboard_actor(request)
        )
    except DomainError as error:  # other writers kept winning (409), or the document went away
        messages.error(request, f"{flag} was not switched: {error.message}")
        return None
    note = f"{flag} is now {'on' if value else 'off'} (revision {document.revision})."
    if request.headers.get("HX-Request"):
        context = _document_context(environment, name, oob=True)
        context["note"] = note
        return render(request, "dashboard/config/_live.html", context)
    messages.success(request, note)
    return redirect(_document_url(environment, name))
