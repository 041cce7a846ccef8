"""Buckets pages: the user bucket list, one bucket's keys (live), one key with history, edit and diff.

Only user buckets exist here: every name goes through ``app_bucket``, so a
``SYS_`` bucket can neither be listed nor opened. Writes call the storage core.
"""

from contextlib import AbstractContextManager
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from buckets.core import store
from buckets.core.exceptions import (
    BucketExists,
    DomainError,
    InvalidArgument,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    RevisionNotFound,
)
from buckets.core.keys import TEXT_KEYS
from buckets.core.names import app_bucket, new_app_bucket, public_name
from buckets.kv.access import bucket_named
from buckets.kv.services import bucket_audit_name, bucket_for_writes
from buckets.models import Bucket, Entry
from kvsite.access.audit import Action, AuditScope, audit_bucket_created, audit_bucket_deleted, audit_operation
from kvsite.access.guard import BUCKET, NAMESPACE, Need, whole
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_DELETE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
)
from kvsite.http.bodies import body_limit

from . import selectors
from .access import dashboard_actor, dashboard_view
from .forms import (
    NOTHING_SAVED,
    BucketCreateForm,
    BucketDeleteForm,
    KeyCreateForm,
    KeyEditForm,
    KeyFilterForm,
    KeyRemoveForm,
)
from .pagination import trail_pop, trail_push
from .values import HEX, TEXT, as_json, value_diff, value_for_editing, value_parse, value_show


def _bucket_or_404(name: str) -> Bucket:
    return store.bucket_get(name=app_bucket(name))


def _owner(request: HttpRequest) -> str:
    """The namespace whose bucket the page shows (read-only here), as the API names it; "" for a plain bucket."""
    resource = request.resource  # type: ignore[attr-defined]
    return resource.name if resource.kind == NAMESPACE else ""


def _key_change(
    request: HttpRequest, bucket: str, key: str, action: str, *, detail: str = ""
) -> AbstractContextManager[AuditScope]:
    """A key change made on a page, audited as the staff user's (the API's key writes are the data plane's)."""
    return audit_operation(
        actor=dashboard_actor(request), action=action, namespace=bucket_audit_name(bucket), key_path=key, detail=detail
    )


def _key_url(bucket: str, key: str, **query) -> str:
    url = reverse("dashboard:key", kwargs={"bucket": bucket, "key": key})
    query = {name: value for name, value in query.items() if value not in (None, "")}
    return f"{url}?{urlencode(query)}" if query else url


# --- Bucket list --------------------------------------------------------------------------


@dashboard_view(
    {"GET": Need(NAMESPACE_READ, resource=whole(BUCKET)), "POST": Need(NAMESPACE_WRITE, resource=whole(BUCKET))}
)
def bucket_list(request: HttpRequest) -> HttpResponse:
    """User buckets with their counters; POST creates one."""
    form = BucketCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            bucket = store.bucket_create(
                name=new_app_bucket(data["name"]),
                description=data["description"],
                ttl_seconds=data["ttl_seconds"],
                history=data["history"],
                max_value_size=data["max_value_size"],
                max_bytes=data["max_bytes"],
                max_keys=data["max_keys"],
                key_format=data["key_format"],
                record=audit_bucket_created(dashboard_actor(request)),
            )
        except BucketExists as error:
            form.add_error("name", error.message)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Bucket {public_name(bucket.name)} created.")
            return redirect("dashboard:bucket", bucket=public_name(bucket.name))
    search = request.GET.get("q", "").strip()[:64]
    buckets = [{"name": public_name(bucket.name), "bucket": bucket} for bucket in selectors.user_buckets(search=search)]
    return render(
        request,
        "dashboard/buckets/list.html",
        {"buckets": buckets, "form": form, "search": search, "open_create": request.method == "POST"},
        status=200,
    )


# --- One bucket -----------------------------------------------------------------------------


def _key_page_context(request: HttpRequest, name: str, bucket: Bucket) -> dict:
    filters = KeyFilterForm(request.GET)
    filters.is_valid()
    pattern = (filters.cleaned_data.get("filter") or "").strip()
    cursor = filters.cleaned_data.get("cursor") or None
    trail = filters.cleaned_data.get("trail") or ""
    page = None
    filter_error = ""
    try:
        page = selectors.key_rows(bucket=bucket.name, pattern=pattern or None, cursor=cursor)
    except InvalidArgument as error:
        filter_error = error.message
    base = {"filter": pattern} if pattern else {}
    next_url = previous_url = None
    if page is not None and page.next_cursor:
        next_url = "?" + urlencode({**base, "cursor": page.next_cursor, "trail": trail_push(trail, cursor)})
    if cursor:
        previous_cursor, previous_trail = trail_pop(trail)
        previous = {**base, "cursor": previous_cursor, "trail": previous_trail}
        previous_url = "?" + urlencode({k: v for k, v in previous.items() if v})
    return {
        "name": name,
        "bucket": bucket,
        "page": page,
        "pattern": pattern,
        "filter_error": filter_error,
        "filters": filters,
        "next_url": next_url,
        "previous_url": previous_url,
        "first_url": "?" + urlencode(base) if cursor else None,
        "text_keys": bucket.key_format == TEXT_KEYS,
    }


# Both key forms carry a value: up to the largest a bucket may allow.
@body_limit(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
@dashboard_view(
    {
        "GET": Need(ENTRY_READ, resource=bucket_named),
        "POST create_key": Need(ENTRY_WRITE, resource=bucket_named),
        "POST delete_bucket": Need(NAMESPACE_DELETE, resource=bucket_named),
    }
)
def bucket_detail(request: HttpRequest, bucket: str) -> HttpResponse:
    """A bucket's keys, a page at a time, live; POST adds a key or deletes the bucket."""
    row = _bucket_or_404(bucket)
    if request.method == "POST":
        bucket_for_writes(name=bucket, resource=request.resource)  # a namespace's bucket: 409
    if request.method == "GET" and request.GET.get("part") == "facts":
        return render(request, "dashboard/buckets/_facts.html", {"name": bucket, "bucket": row})
    create_form = KeyCreateForm(initial={"encoding": TEXT})
    delete_form = BucketDeleteForm(bucket=bucket)
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "create_key":
        create_form = KeyCreateForm(request.POST)
        if create_form.is_valid():
            data = create_form.cleaned_data
            try:
                value = value_parse(data["value"], encoding=data["encoding"])
                with _key_change(request, bucket, data["key"], Action.WRITE):
                    store.entry_create(bucket=row.name, key=data["key"], value=value)
            except ValueError as error:
                create_form.add_error("value", str(error))
            except KeyExists as error:
                create_form.add_error("key", error.message)
            except DomainError as error:
                create_form.add_error(None, error.message)
            else:
                messages.success(request, f"Key {data['key']} created.")
                return redirect(_key_url(bucket, data["key"]))
    elif action == "delete_bucket":
        delete_form = BucketDeleteForm(request.POST, bucket=bucket)
        if delete_form.is_valid():
            store.bucket_delete(name=row.name, record=audit_bucket_deleted(dashboard_actor(request)))
            messages.success(request, f"Bucket {bucket} and all its keys were deleted.")
            return redirect("dashboard:buckets")
    context = _key_page_context(request, bucket, row)
    if (
        request.method == "GET"
        and request.headers.get("HX-Request")
        and not request.headers.get("HX-History-Restore-Request")
    ):
        return render(request, "dashboard/buckets/_keys.html", context)
    context.update(
        create_form=create_form, delete_form=delete_form, open_create=action == "create_key", owner=_owner(request)
    )
    return render(request, "dashboard/buckets/detail.html", context)


# --- One key ----------------------------------------------------------------------------------


def _latest_entry(row: Bucket, key: str) -> Entry | None:
    try:
        return store.entry_get(bucket=row.name, key=key, key_format=row.key_format)
    except KeyNotFound:
        return None


def _history(row: Bucket, key: str) -> list[Entry]:
    try:
        return store.entry_history(bucket=row.name, key=key, key_format=row.key_format)
    except KeyNotFound:
        return []


def _revision_param(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidArgument("revision must be a positive integer")
    return int(raw)


def _edit_form(entry: Entry) -> KeyEditForm:
    """The edit form of the latest value: as text if it round-trips through a text box, else as hex, saying why."""
    editable = value_for_editing(bytes(entry.value))
    form = KeyEditForm(
        initial={
            "value": editable.text,
            "encoding": editable.encoding,
            "newline": editable.newline,
            "revision": entry.revision,
            "check_json": as_json(bytes(entry.value)) is not None,
        }
    )
    if editable.encoding == HEX:
        form.fields["value"].help_text = editable.note
    return form


@body_limit(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
@dashboard_view(
    {
        "GET": Need(ENTRY_READ, resource=bucket_named),
        "POST save": Need(ENTRY_WRITE, resource=bucket_named),
        "POST delete": Need(ENTRY_DELETE, resource=bucket_named),
        "POST purge": Need(ENTRY_DELETE, resource=bucket_named),
    }
)
def key_detail(request: HttpRequest, bucket: str, key: str) -> HttpResponse:
    """A key: its value (JSON, text or hex), history, a diff between revisions; POST saves (CAS), deletes, purges."""
    row = _bucket_or_404(bucket)
    if request.method == "POST":
        bucket_for_writes(name=bucket, resource=request.resource)  # a namespace's bucket: 409
    latest = _latest_entry(row, key)
    history = _history(row, key)
    if latest is None and not history:
        raise KeyNotFound(key)
    owner = _owner(request)
    context: dict = {"name": bucket, "bucket": row, "key": key, "latest": latest, "owner": owner}
    edit_form = _edit_form(latest) if latest and not owner else None

    action = request.POST.get("action") if request.method == "POST" else None
    if action == "save":
        edit_form = KeyEditForm(request.POST)
        if edit_form.is_valid():
            data = edit_form.cleaned_data
            try:
                value = value_parse(data["value"], encoding=data["encoding"], newline=data["newline"])
                if latest is not None and bytes(latest.value) == value:
                    # The key holds this value already: a new revision would only tell watchers of a change.
                    messages.info(request, NOTHING_SAVED)
                    return redirect(_key_url(bucket, key))
                with _key_change(request, bucket, key, Action.WRITE):
                    entry = store.entry_put(bucket=row.name, key=key, value=value, if_revision=data["revision"])
            except ValueError as error:
                edit_form.add_error("value", str(error))
            except RevisionMismatch as error:
                context["conflict"] = _conflict(row, key, mine=value, expected=data["revision"], error=error)
                # The form now aims at the revision that won, so "save anyway" is a deliberate overwrite.
                current = context["conflict"]["current"]
                edit_form = KeyEditForm(initial={**data, "revision": current.revision if current else data["revision"]})
            except DomainError as error:
                edit_form.add_error(None, error.message)
            else:
                messages.success(request, f"Saved {key} as revision {entry.revision}.")
                return redirect(_key_url(bucket, key))
    elif action in ("delete", "purge"):
        remove_form = KeyRemoveForm(request.POST)
        if remove_form.is_valid():
            remove = store.entry_purge if action == "purge" else store.entry_delete
            try:
                with _key_change(request, bucket, key, Action.DELETE, detail=action):
                    remove(bucket=row.name, key=key, if_revision=remove_form.cleaned_data["revision"])
            except RevisionMismatch as error:
                messages.error(
                    request,
                    f"Someone else wrote {key} meanwhile ({error.message}); nothing was {action}d. "
                    "Look at the current value and try again.",
                )
                return redirect(_key_url(bucket, key))
            messages.success(request, f"Key {key} {'purged' if action == 'purge' else 'deleted'}.")
            if action == "purge":
                return redirect("dashboard:bucket", bucket=bucket)
            return redirect(_key_url(bucket, key))
        messages.error(request, "That form was incomplete; nothing was removed.")

    view = request.GET.get("view")
    shown_revision = _revision_param(request.GET.get("rev"))
    shown_entry = latest
    if shown_revision is not None and (latest is None or shown_revision != latest.revision):
        try:
            shown_entry = store.entry_get(bucket=row.name, key=key, revision=shown_revision, key_format=row.key_format)
        except RevisionNotFound as error:
            messages.error(request, error.message)
    context.update(
        history=list(reversed(history)),
        shown=shown_entry,
        shown_value=value_show(bytes(shown_entry.value), view=view) if shown_entry else None,
        edit_form=edit_form,
        confirm=request.GET.get("confirm") if request.GET.get("confirm") in ("delete", "purge") else None,
        deletion=_deletion(row, history),
        diff=_diff_context(request, row, key, history),
        watch_key=key if row.key_format != TEXT_KEYS else "",
    )
    return render(request, "dashboard/buckets/key.html", context)


def _revisions_text(revisions: list[int]) -> str:
    if len(revisions) == 1:
        return f"revision {revisions[0]}"
    return f"revisions {', '.join(map(str, revisions[:-1]))} and {revisions[-1]}"


def _deletion(row: Bucket, history: list[Entry]) -> dict:
    """What deleting the key keeps, by the bucket's ``history``: the delete marker is one of the kept entries.

    With ``history=1`` (the default) the marker takes the value's place, so the value
    is gone for good; otherwise the oldest entries past the limit drop out.
    """
    dropping = history[: max(0, len(history) + 1 - row.history)]
    dropped = [entry.revision for entry in dropping if entry.operation == Entry.Operation.PUT]
    return {
        "value_kept": row.history > 1,
        "dropped": f"{_revisions_text(dropped)} {'drops' if len(dropped) == 1 else 'drop'} out" if dropped else "",
    }


def _conflict(row: Bucket, key: str, *, mine: bytes, expected: int, error: RevisionMismatch) -> dict:
    current = _latest_entry(row, key)
    return {
        "expected": expected,
        "message": error.message,
        "current": current,
        "current_value": value_show(bytes(current.value)) if current else None,
        "mine_value": value_show(mine),
    }


def _diff_context(request: HttpRequest, row: Bucket, key: str, history: list[Entry]) -> dict | None:
    old_revision = _revision_param(request.GET.get("from"))
    new_revision = _revision_param(request.GET.get("to"))
    if old_revision is None or new_revision is None:
        return None
    by_revision = {entry.revision: entry for entry in history}
    old, new = by_revision.get(old_revision), by_revision.get(new_revision)
    if old is None or new is None:
        return {"error": "Both revisions must be kept ones; pick them from the history."}
    return {
        "old": old,
        "new": new,
        "lines": value_diff(
            bytes(old.value),
            bytes(new.value),
            old_label=f"revision {old_revision}",
            new_label=f"revision {new_revision}",
        ),
    }
