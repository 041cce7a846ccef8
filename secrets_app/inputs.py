"""Input validation and output shapes of the secrets API.

``SecretInfoOutput`` (listing, info, write responses) has no value field and is
built from ``SecretInfo``, which has none either; only ``SecretValueOutput``,
used by the reveal endpoint alone, carries a value.
"""

from rest_framework import serializers

from secrets_app.services import MAX_DESCRIPTION, MAX_SECRET_BYTES


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


class SecretInfoOutput(serializers.Serializer):
    name = serializers.CharField()
    revision = serializers.IntegerField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SecretValueOutput(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    revision = serializers.IntegerField()
