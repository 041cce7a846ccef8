"""The API answers JSON whatever Accept asks for; bodies are still read by their Content-Type."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*", "application/json; indent=4"])
def test_every_api_view_answers_compact_json_whatever_accept_says(admin_client, make_bucket, accept: str) -> None:
    make_bucket("settings")

    for path in ("/api/v1/kv/buckets", "/api/v1/kv/buckets/settings/keys", "/api/v1/kv/buckets/settings/keys/nope"):
        response = admin_client.get(path, HTTP_ACCEPT=accept)
        assert response["Content-Type"] == "application/json", (path, response.status_code)
        assert response.status_code in (200, 404)
        assert b"\n" not in response.content


def test_a_json_body_sent_as_something_else_is_a_415_json_error(admin_client) -> None:
    response = admin_client.post("/api/v1/kv/buckets", '{"name": "x"}', content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "invalid_argument"


@pytest.mark.parametrize(
    ("query", "accept", "content_type"),
    [
        ("", "application/vnd.oai.openapi+json", "application/vnd.oai.openapi+json"),
        ("?format=json", "*/*", "application/vnd.oai.openapi+json"),
        ("", "application/vnd.oai.openapi", "application/vnd.oai.openapi"),
    ],
)
def test_the_schema_still_comes_as_json_or_yaml(admin_client, query: str, accept: str, content_type: str) -> None:
    response = admin_client.get(f"/api/v1/schema{query}", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
