"""schemathesis against a live server and its own OpenAPI schema: no 5xx, and every
response conforms to the schema (status codes, content types, bodies)."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access.apikeys import apikey_create
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


# --- Hostile JSON, where schema-driven fuzzing only sends valid JSON ---------------------------------

# Numbers and strings a parser may take but the storage cannot, and JSON that is not I-JSON.
HOSTILE_SCALARS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, '"\\ud800"', '"a\\udfffb"',
                   '"\\u0000"', '""', "0", "-0.0", "true", "null", '"ok"', "12345678901234567890",
                   # an escaped backslash, then the text "ud800", then a lone low surrogate
                   '"\\\\ud800\\udc00"']  # fmt: skip
PATH_VALUES = {"bucket": "settings", "key": "k", "name": "doc", "key_path": "a/b", "ns_id": "{ns_id}"}


def hostile_json() -> st.SearchStrategy[str]:
    """JSON texts with non-finite numbers, lone surrogates, duplicate names, huge arrays and deep nesting."""
    names = st.sampled_from(["value", "name", "data", "keys", "entries", "revision", "a", "\\ud800", ""])

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        arrays = st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        objects = st.lists(st.tuples(names, children), max_size=4).map(
            lambda pairs: "{" + ",".join(f'"{name}":{value}' for name, value in pairs) + "}"
        )
        duplicated = st.tuples(names, children, children).map(lambda t: f'{{"{t[0]}":{t[1]},"{t[0]}":{t[2]}}}')
        huge = st.integers(1000, 100_000).map(lambda count: "[" + ",".join(["0"] * count) + "]")
        deep = st.integers(65, 5000).map(lambda depth: "[" * depth + "]" * depth)
        return st.one_of(arrays, objects, duplicated, huge, deep)

    return st.recursive(st.sampled_from(HOSTILE_SCALARS), containers, max_leaves=8)


def json_operations(schema: dict) -> list[tuple[str, str, list[str]]]:
    """(method, path, top-level field names) of every operation that takes a JSON body."""
    components = schema["components"]["schemas"]
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            body_schema = next((value["schema"] for kind, value in content.items() if "json" in kind), None)
            if body_schema is None:
                continue
            if "$ref" in body_schema:
                body_schema = components[body_schema["$ref"].rsplit("/", 1)[-1]]
            fields = sorted(body_schema.get("properties", {})) or ["value"]
            operations.append((method.upper(), path.format(**PATH_VALUES), fields))
    return operations


def test_hostile_json_bodies_are_4xx_json_never_5xx_on_the_production_path(asgi_server_factory) -> None:  # noqa: F811
    # Given a production server (debug off, Redis, a2wsgi) and every operation that takes JSON.
    store.bucket_create(name=app_bucket("settings"))
    token = apikey_create(name="fuzz", role="admin").token
    server = asgi_server_factory(serving="production")
    headers = {"Authorization": f"Bearer {token}", "X-Ironflow-Environment-ID": "fuzz"}
    http = httpx.Client(base_url=server.http_url, headers=headers, timeout=30)
    namespace = http.post("/api/v1/kv/namespaces", json={"name": "fuzzed", "applicationId": "fuzz"})
    assert namespace.status_code == 201, namespace.text
    schema = http.get("/api/v1/schema", params={"format": "json"}).json()
    operations = [
        (method, path.replace("{ns_id}", namespace.json()["id"]), fields)
        for method, path, fields in json_operations(schema)
    ]
    assert len(operations) >= 10, operations
    seen: set[int] = set()
    exercised: set[tuple[str, str]] = set()

    @settings(max_examples=int(os.environ.get("KV_FUZZ_EXAMPLES", "10")) * 20, deadline=None, derandomize=True)
    @given(
        operation=st.sampled_from(operations),
        values=st.lists(hostile_json(), min_size=1, max_size=3),
        chunked=st.booleans(),
        broken=st.booleans(),
    )
    def hostile(operation: tuple[str, str, list[str]], values: list[str], chunked: bool, broken: bool) -> None:
        # When each field of a body gets a hostile value, sent whole or chunked, and sometimes
        # followed by broken syntax (a trailing comma) after the hostile tokens...
        method, path, fields = operation
        members = ",".join(f'"{field}":{value}' for field, value in zip(fields, values, strict=False))
        body = ("{" + members + (", }" if broken else "}")).encode()
        content = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
        response = http.request(method, path, content=content, headers={"Content-Type": "application/json"})
        # ...the answer is never a server error, and every refusal is a JSON error body.
        seen.add(response.status_code)
        exercised.add((method, path))
        assert response.status_code < 500, (method, path, body[:300], response.status_code, response.text[:500])
        if response.status_code >= 400:
            error = response.json()
            assert error.get("code") or (error.get("error") or {}).get("code"), (method, path, error)

    try:
        hostile()
    finally:
        http.close()
    # The refusals this test exists for did happen, across the operations (a run that only
    # ever hit 404s, or one operation, would prove nothing).
    assert 400 in seen, seen
    assert len(exercised) >= 0.8 * len(operations), (exercised, operations)
