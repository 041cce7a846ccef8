"""The secrets API's request inputs, parsed into the typed values ``services`` takes.

The environment header names what every route touches, ``secrets:<environment>``
(``environment_named``, the routes' resolver: 400 if it is missing or malformed, once
the caller holds a secrets permission); the view records that refusal like any other.
Bodies are checked by the DRF serializers below (their messages are the API's, and
the OpenAPI schema shows them) once access is decided and before the service runs: a
malformed body is a 400 that audits nothing. Names in the path follow the key rules,
checked by the service.
"""

from dataclasses import dataclass
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from kvsite.access.guard import SECRETS, Call, Resource
from secrets_app.services import MAX_DESCRIPTION, MAX_SECRET_BYTES, environment_checked

ENVIRONMENT_HEADER = "X-Ironflow-Environment-ID"


@dataclass(frozen=True)
class SecretCreateParams:
    name: str
    value: str
    description: str


@dataclass(frozen=True)
class SecretUpdateParams:
    value: str
    description: str | None  # None: keep the current one


@dataclass(frozen=True)
class SecretPatchParams:
    new_name: str | None  # None: keep the name
    description: str | None  # None: keep the current one


def _value_field(**options) -> serializers.CharField:
    # Secrets are used verbatim: no trimming; the byte limit is checked by the service.
    return serializers.CharField(trim_whitespace=False, allow_blank=True, max_length=MAX_SECRET_BYTES, **options)


def _description_field() -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, max_length=MAX_DESCRIPTION)


class _ObjectInput(serializers.Serializer):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["body must be a JSON object"]})
        return super().to_internal_value(data)


class SecretCreateInput(_ObjectInput):
    name = serializers.CharField(max_length=512, trim_whitespace=False)
    value = _value_field()
    description = _description_field()


class SecretUpdateInput(_ObjectInput):
    value = _value_field()
    description = _description_field()


class SecretPatchInput(_ObjectInput):
    name = serializers.CharField(required=False, max_length=512, trim_whitespace=False)
    description = _description_field()

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["give a new name, a description or both"]})
        return attrs


def _valid(serializer_class: type[serializers.Serializer], body: Any) -> dict:
    params = serializer_class(data=body)
    params.is_valid(raise_exception=True)
    return params.validated_data


def environment_of(request: Request) -> str:
    """``X-Ironflow-Environment-ID`` as sent, stripped ("" when absent)."""
    return request.headers.get(ENVIRONMENT_HEADER, "").strip()


def environment_named(call: Call) -> Resource:
    """The resolver of every secrets route: ``secrets:<environment>`` from the header (400 if missing or malformed)."""
    return Resource(SECRETS, environment_checked(call.headers.get(ENVIRONMENT_HEADER.lower(), "").strip()))


def secret_create_input(body: Any) -> SecretCreateParams:
    """A create body, ``{name, value, description?}``."""
    data = _valid(SecretCreateInput, body)
    return SecretCreateParams(name=data["name"], value=data["value"], description=data.get("description", ""))


def secret_update_input(body: Any) -> SecretUpdateParams:
    """A new version's body, ``{value, description?}``."""
    data = _valid(SecretUpdateInput, body)
    return SecretUpdateParams(value=data["value"], description=data.get("description"))


def secret_patch_input(body: Any) -> SecretPatchParams:
    """A rename or description change, ``{name?, description?}`` (at least one of them)."""
    data = _valid(SecretPatchInput, body)
    return SecretPatchParams(new_name=data.get("name"), description=data.get("description"))
