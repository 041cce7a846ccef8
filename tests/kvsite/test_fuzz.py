"""schemathesis against a live server and its own OpenAPI schema: no 5xx, and every
response conforms to the schema (status codes, content types, bodies)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buckets import store
from buckets.names import app_bucket
from kvsite.apikeys import apikey_create
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def test_every_endpoint_survives_schema_driven_fuzzing(asgi_server_factory, tmp_path) -> None:  # noqa: F811
    server = asgi_server_factory()
    token = apikey_create(name="fuzz", role="admin").token
    store.bucket_create(name=app_bucket("settings"))
    st = Path(sys.executable).with_name("st")

    result = subprocess.run(
        [str(st), "run", f"{server.http_url}/api/v1/schema", "--checks", CHECKS,
         "-H", f"Authorization: Bearer {token}", "-H", "X-Ironflow-Environment-ID: fuzz",
         "--phases", "coverage,fuzzing", "--max-examples", os.environ.get("KV_FUZZ_EXAMPLES", "10"),
         "--workers", "1", "--seed", "1", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
