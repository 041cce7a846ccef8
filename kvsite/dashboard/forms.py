"""Dashboard input forms: they check shapes and ranges; the storage core and services decide the rest."""

from django import forms
from django.conf import settings

from buckets.configs.services import MAX_DOCUMENT_BYTES
from buckets.core.exceptions import DomainError
from buckets.core.keys import KEY_FORMATS, NATS_KEYS
from buckets.core.store import MAX_HISTORY, MAX_TTL_SECONDS
from kvsite.access.permissions import ROLE_PERMISSIONS
from kvsite.http.jsonbody import json_read
from kvsite.models import ApiKey, AuditEvent

from .values import HEX, TEXT

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
NAME_HELP = "1-64 letters, digits, '-' or '_'."
NAME_ERRORS = {"invalid": "Use 1-64 letters, digits, '-' or '_' (no spaces)."}
ENCODINGS = [(TEXT, "Text (UTF-8)"), (HEX, "Hex (binary)")]
# A config document as typed (indented) may be several times its stored size.
CONFIG_TEXT_MAX_BYTES = 4 * MAX_DOCUMENT_BYTES
# What an editor's Save says when what it sent is what is stored already (and so writes nothing).
NOTHING_SAVED = "No changes — nothing saved."


def _json_problem(raw: str, *, max_bytes: int, exact: bool) -> tuple[object, str | None]:
    """``(value, None)``, or ``(None, why)`` when ``raw`` is not JSON the project's reader takes."""
    try:
        return json_read(raw, max_bytes=max_bytes, exact=exact, what="This text"), None
    except DomainError as error:
        return None, error.message


def _json_object(raw: str) -> dict:
    # Plain numbers, as the config API reads them: a document is stored as floats and ints.
    data, problem = _json_problem(raw, max_bytes=CONFIG_TEXT_MAX_BYTES, exact=False)
    if problem:
        raise forms.ValidationError(problem)
    if not isinstance(data, dict):
        raise forms.ValidationError("A config document must be a JSON object ({...}).")
    return data


# --- Buckets and keys -------------------------------------------------------------------


class BucketCreateForm(forms.Form):
    name = forms.RegexField(regex=NAME_PATTERN, error_messages=NAME_ERRORS, max_length=64, help_text=NAME_HELP)
    description = forms.CharField(max_length=4096, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    ttl_seconds = forms.IntegerField(
        label="TTL (seconds)", min_value=0, max_value=MAX_TTL_SECONDS, initial=0, help_text="0 = values never expire."
    )
    history = forms.IntegerField(
        min_value=1, max_value=MAX_HISTORY, initial=1, help_text=f"Revisions kept per key (1-{MAX_HISTORY})."
    )
    max_value_size = forms.IntegerField(
        label="Max value size (bytes)",
        min_value=1,
        required=False,
        help_text="Empty = the server default.",
    )
    max_bytes = forms.IntegerField(
        label="Max bucket size (bytes)", min_value=-1, max_value=2**62, required=False, help_text="Empty = unlimited."
    )
    max_keys = forms.IntegerField(label="Max keys", min_value=-1, required=False, help_text="Empty = unlimited.")
    key_format = forms.ChoiceField(
        choices=[(name, name) for name in KEY_FORMATS],
        initial=NATS_KEYS,
        help_text="nats: letters, digits and - / _ = . : (wildcards work); text: any UTF-8.",
    )

    def clean_max_value_size(self) -> int | None:
        size = self.cleaned_data["max_value_size"]
        if size is not None and size > settings.KV_VALUE_SIZE_CEILING:
            raise forms.ValidationError(f"At most {settings.KV_VALUE_SIZE_CEILING} bytes.")
        return size


class BucketDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the bucket name to confirm", max_length=64)

    def __init__(self, *args, bucket: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bucket = bucket

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.bucket:
            raise forms.ValidationError("That is not this bucket's name; nothing was deleted.")
        return typed


class KeyFilterForm(forms.Form):
    filter = forms.CharField(
        required=False,
        max_length=512,
        label="Filter keys",
        help_text="An exact key or a wildcard: user.* (one token), user.> (the rest).",
    )
    cursor = forms.CharField(required=False, max_length=1024)
    trail = forms.CharField(required=False, max_length=16384)


class ValueFields(forms.Form):
    value = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"})
    )
    encoding = forms.ChoiceField(choices=ENCODINGS, initial=TEXT)
    # The line endings of the value being edited (browsers submit CRLF whatever it had).
    newline = forms.ChoiceField(
        choices=[("lf", "lf"), ("crlf", "crlf")], initial="lf", required=False, widget=forms.HiddenInput
    )
    check_json = forms.BooleanField(required=False, label="Must be valid JSON")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("check_json") and data.get("encoding") == TEXT:
            # Exact: the value is stored as typed, so any number is fine, as in the items API.
            _, problem = _json_problem(
                data.get("value") or "", max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, exact=True
            )
            if problem:
                self.add_error("value", problem)
        return data


class KeyCreateForm(ValueFields):
    key = forms.CharField(max_length=512, strip=False)

    field_order = ["key", "value", "encoding", "check_json"]


class KeyEditForm(ValueFields):
    revision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["value"].label = "New value"


class KeyRemoveForm(forms.Form):
    revision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


# --- Config -------------------------------------------------------------------------------


class ConfigCreateForm(forms.Form):
    environment = forms.RegexField(
        regex=NAME_PATTERN, error_messages=NAME_ERRORS, max_length=64, initial="default", help_text=NAME_HELP
    )
    name = forms.CharField(max_length=512, help_text="Document name, e.g. feature-flags or app/settings.")
    data = forms.CharField(
        label="JSON", initial="{}", strip=False, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})
    )

    def clean_data(self) -> dict:
        return _json_object(self.cleaned_data["data"])


class ConfigEditForm(forms.Form):
    data = forms.CharField(label="JSON", strip=False, widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}))
    revision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def clean_data(self) -> dict:
        return _json_object(self.cleaned_data["data"])


class ConfigFlagForm(forms.Form):
    flag = forms.CharField(max_length=512)
    value = forms.TypedChoiceField(choices=[("true", "on"), ("false", "off")], coerce=lambda raw: raw == "true")


class RevisionForm(forms.Form):
    revision = forms.IntegerField(min_value=1)


# --- Secrets ------------------------------------------------------------------------------


class SecretCreateForm(forms.Form):
    environment = forms.RegexField(regex=NAME_PATTERN, error_messages=NAME_ERRORS, max_length=64, help_text=NAME_HELP)
    name = forms.CharField(max_length=512, help_text="e.g. db/password")
    value = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "off"}))
    description = forms.CharField(max_length=4096, required=False)


class SecretRotateForm(forms.Form):
    value = forms.CharField(label="New value", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "off"}))


class SecretDescribeForm(forms.Form):
    description = forms.CharField(max_length=4096, required=False)


# --- Audit, API keys ------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "Any action"), *AuditEvent.Action.choices], required=False)
    actor = forms.CharField(required=False, max_length=150, help_text="A name, or user:<id> / api_key:<id>.")
    namespace = forms.CharField(
        required=False, max_length=80, help_text="A bucket name, config:<env> or secrets:<env>."
    )
    since = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    cursor = forms.CharField(required=False, max_length=64)
    trail = forms.CharField(required=False, max_length=16384)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=[(role, role) for role in sorted(ROLE_PERMISSIONS)], initial=ApiKey.Role.READER)
    bucket_pattern = forms.CharField(
        max_length=100, required=False, help_text="Glob of bucket names it may touch, e.g. orders-*; empty = all."
    )
    account = forms.CharField(
        max_length=40,
        required=False,
        help_text="Owner of the key's items (/kv/items); keys of one account share them. Empty = its own (key-<id>).",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        help_text="Empty = never.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class ApiKeyRevokeForm(forms.Form):
    api_key_id = forms.IntegerField(min_value=1)
