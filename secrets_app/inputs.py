"""The secrets API's request inputs, parsed into the typed values ``services`` takes.

Bodies are checked by the DRF serializers below (their messages are the API's, and
the OpenAPI schema shows them), before the service runs: a malformed body is a 400
that authorizes and audits nothing. The environment header is only read here;
whether it is present and well formed is the service's call
(``services.environment_bucket``), inside the audited operation, so a call without
one is a refusal on record. Names in the path follow the key rules, checked by the
service too.
"""

from dataclasses import dataclass
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from secrets_app.services import MAX_DESCRIPTION, MAX_SECRET_BYTES

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
    """``X-Ironflow-Environment-ID`` as sent, stripped ("" when absent: the service refuses it)."""
    return request.headers.get(ENVIRONMENT_HEADER, "").strip()


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
