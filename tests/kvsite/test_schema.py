"""The OpenAPI schema is valid and complete enough to generate without warnings."""

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_validates_without_warnings(tmp_path) -> None:
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=io.StringIO())

    text = target.read_text()
    assert "/api/v1/kv/buckets/{bucket}/keys/{key}/history:" in text
    assert "bearer" in text
    assert "/api/v1/apikeys:" in text and "/api/v1/apikeys/{key_id}:" in text
    assert "IssuedApiKeyOutput" in text and "token_hash" not in text
