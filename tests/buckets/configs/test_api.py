"""The config API: whole-document writes, merge patches, conditions, history, environments."""

import json

import pytest
from rest_framework.test import APIClient

from buckets.configs import services as configs
from kvsite.access.audit import audit_actor_system

pytestmark = pytest.mark.django_db

API = "/api/v1/config"
OTHER_WRITER = audit_actor_system(name="another writer")


def post(client: APIClient, name: str, data, env: str | None = None, **headers):
    if env:
        headers["HTTP_X_IRONFLOW_ENVIRONMENT_ID"] = env
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return client.generic("POST", f"{API}/{name}", body, content_type="application/json", **headers)


def patch(client: APIClient, name: str, data, **headers):
    return client.generic(
        "PATCH", f"{API}/{name}", json.dumps(data).encode(), content_type="application/merge-patch+json", **headers
    )


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_create_get_and_create_again(admin_client: APIClient) -> None:
    created = post(admin_client, "flags", {"darkMode": True}, HTTP_IF_NONE_MATCH="*")
    assert created.status_code == 200 and created.json() == {"name": "flags", "revision": 1}

    again = post(admin_client, "flags", {"darkMode": False}, HTTP_IF_NONE_MATCH="*")
    assert_error(again, 412, "failed_precondition")

    got = admin_client.get(f"{API}/flags")
    assert got["ETag"] == '"1"'
    assert got.json() | {"updatedAt": None} == {
        "name": "flags",
        "data": {"darkMode": True},
        "revision": 1,
        "updatedAt": None,
    }


def test_if_match_guards_replacement(admin_client: APIClient) -> None:
    post(admin_client, "app", {"a": 1})
    post(admin_client, "app", {"a": 2}, HTTP_IF_MATCH="1")

    assert_error(post(admin_client, "app", {"a": 3}, HTTP_IF_MATCH="1"), 412, "failed_precondition")
    assert admin_client.get(f"{API}/app").json()["data"] == {"a": 2}


def test_merge_patch_merges_nested_objects_and_null_removes(admin_client: APIClient) -> None:
    post(admin_client, "app", {"title": "x", "db": {"host": "a", "port": 5432, "opts": {"ssl": True}}, "old": 1})

    response = patch(admin_client, "app", {"db": {"host": "b", "opts": {"ssl": None, "timeout": 5}}, "old": None})

    assert response.json() == {"name": "app", "revision": 2}
    assert admin_client.get(f"{API}/app").json()["data"] == {
        "title": "x",
        "db": {"host": "b", "port": 5432, "opts": {"timeout": 5}},
    }


def test_patch_with_stale_if_match_is_412_and_missing_document_404(admin_client: APIClient) -> None:
    post(admin_client, "app", {"a": 1})
    post(admin_client, "app", {"a": 2})

    assert_error(patch(admin_client, "app", {"b": 1}, HTTP_IF_MATCH="1"), 412, "failed_precondition")
    assert patch(admin_client, "app", {"b": 1}, HTTP_IF_MATCH='"2"').status_code == 200
    assert_error(patch(admin_client, "missing", {"b": 1}), 404, "not_found")
    assert_error(admin_client.get(f"{API}/missing"), 404, "not_found")


def test_a_patch_that_keeps_losing_races_is_a_409_with_the_real_revision(admin_client: APIClient, monkeypatch) -> None:
    # Given another writer that replaces the document between every read and write of the patch...
    configs.config_set(environment="default", name="raced", data={"a": 1}, actor=OTHER_WRITER)
    merge = configs.apply_merge_patch

    def raced(document: dict, patch: dict) -> dict:
        configs.config_set(environment="default", name="raced", data={"other": "writer"}, actor=OTHER_WRITER)
        return merge(document, patch)

    monkeypatch.setattr(configs, "apply_merge_patch", raced)

    # ...when a patch without If-Match runs out of attempts...
    response = admin_client.patch("/api/v1/config/raced", {"b": 2}, format="json")

    # ...it is told the document exists, at which revision, and that it may try again.
    latest = configs.config_get(environment="default", name="raced").revision
    assert response.status_code == 409
    assert response.json() == {
        "error": f"config 'raced' changed under this patch {configs.PATCH_ATTEMPTS} times; "
        f"it is at revision {latest}: try again",
        "code": "aborted",
        "current_revision": latest,
    }
    assert configs.config_get(environment="default", name="raced").data == {"other": "writer"}


def test_delete_then_history_and_rollback(admin_client: APIClient) -> None:
    post(admin_client, "app", {"v": 1})
    post(admin_client, "app", {"v": 2})
    assert_error(admin_client.delete(f"{API}/app", HTTP_IF_MATCH="1"), 412, "failed_precondition")
    assert admin_client.delete(f"{API}/app").status_code == 204
    assert_error(admin_client.get(f"{API}/app"), 404, "not_found")
    assert_error(admin_client.delete(f"{API}/app"), 404, "not_found")

    history = admin_client.get(f"{API}/app/history").json()["history"]
    assert [(h["revision"], h["data"], h["operation"]) for h in history] == [
        (3, None, "delete"),
        (2, {"v": 2}, "put"),
        (1, {"v": 1}, "put"),
    ]

    rolled = admin_client.post(f"{API}/app/rollback", {"revision": 1}, format="json")
    assert rolled.json() == {"name": "app", "revision": 4}
    assert admin_client.get(f"{API}/app").json()["data"] == {"v": 1}
    assert_error(admin_client.post(f"{API}/app/rollback", {"revision": 3}, format="json"), 404, "not_found")
    assert_error(admin_client.post(f"{API}/app/rollback", {"revision": "x"}, format="json"), 400, "invalid_argument")


def test_history_keeps_the_configured_depth(admin_client: APIClient, settings) -> None:
    settings.KV_CONFIG_HISTORY = 3
    for version in range(5):
        post(admin_client, "app", {"v": version})

    history = admin_client.get(f"{API}/app/history").json()["history"]

    assert [h["revision"] for h in history] == [5, 4, 3]


def test_listing_names_revisions_and_update_times(admin_client: APIClient) -> None:
    post(admin_client, "b", {"x": 1})
    post(admin_client, "a", {"x": 1})
    post(admin_client, "a", {"x": 2})

    listed = admin_client.get(API).json()["configs"]

    assert [(c["name"], c["revision"]) for c in listed] == [("a", 3), ("b", 1)]
    assert all(c["updatedAt"].endswith("Z") for c in listed)


def test_environments_are_isolated(admin_client: APIClient) -> None:
    post(admin_client, "flags", {"beta": True}, env="staging")

    assert_error(admin_client.get(f"{API}/flags"), 404, "not_found")
    assert admin_client.get(API).json() == {"configs": []}
    staging = admin_client.get(f"{API}/flags", HTTP_X_IRONFLOW_ENVIRONMENT_ID="staging")
    assert staging.json()["data"] == {"beta": True}
    assert_error(admin_client.get(API, HTTP_X_IRONFLOW_ENVIRONMENT_ID="bad env!"), 400, "invalid_argument")


@pytest.mark.parametrize("body", [b"[1,2]", b'"text"', b"42", b"null", b"{not json", b"", b"[" * 100_000])
def test_data_must_be_a_json_object(admin_client: APIClient, body: bytes) -> None:
    assert_error(post(admin_client, "app", body), 400, "invalid_argument")


def test_deeply_nested_documents_are_400_not_500(admin_client: APIClient) -> None:
    deep = b'{"a":' * 200 + b"1" + b"}" * 200

    assert_error(post(admin_client, "app", deep), 400, "invalid_argument")


def test_document_size_limit_is_413(admin_client: APIClient) -> None:
    near_limit = {"blob": "x" * (configs.MAX_DOCUMENT_BYTES - 20)}
    over = {"blob": "x" * configs.MAX_DOCUMENT_BYTES}

    assert post(admin_client, "big", near_limit).status_code == 200
    assert_error(post(admin_client, "big", over), 413, "resource_exhausted")


def test_names_follow_the_key_rules(admin_client: APIClient) -> None:
    assert post(admin_client, "services/api.limits", {"a": 1}).status_code == 200
    assert_error(post(admin_client, "bad..name", {"a": 1}), 400, "invalid_argument")


def test_config_buckets_never_show_in_the_bucket_api(admin_client: APIClient) -> None:
    post(admin_client, "flags", {"a": 1})

    assert admin_client.get("/api/v1/kv/buckets").json()["count"] == 0
    assert admin_client.get("/api/v1/kv/buckets/SYS_config_default").status_code == 404
    assert admin_client.get("/api/v1/kv/buckets/SYS_config_default/keys/flags").status_code == 404


def test_permissions(client_for) -> None:
    reader, writer = client_for("reader"), client_for("writer")

    assert post(writer, "flags", {"a": 1}).status_code == 200
    assert reader.get(f"{API}/flags").status_code == 200
    assert reader.get(API).status_code == 200
    assert_error(post(reader, "flags", {"a": 2}), 403, "permission_denied")
    assert_error(patch(reader, "flags", {"a": 2}), 403, "permission_denied")
    assert_error(reader.delete(f"{API}/flags"), 403, "permission_denied")
    assert_error(reader.post(f"{API}/flags/rollback", {"revision": 1}, format="json"), 403, "permission_denied")
    assert APIClient().get(API).status_code == 401
