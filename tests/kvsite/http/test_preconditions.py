"""If-Match on the key and config APIs, by RFC 9110: strong comparison, lists, ``*``; 400 only off the grammar."""

import base64
import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/kv/buckets/cas/keys"
CONFIG = "/api/v1/config"

MALFORMED = [
    '"3',  # unbalanced quotes
    '3"',
    'W/"3',
    '"3" x',  # junk after a tag
    '"3" "4"',  # two tags without a comma
    '"3";"4"',
    'w/"3"',  # W/ is case-sensitive
    "W/3",
    "W/W/" * 3 + '"3"',
    '*, "3"',  # * stands alone
    "1,2,3",  # bare revisions are accepted alone, not in a list
    ",",  # a list that names no entity-tag
    "",
    "abc",
    "0",
]


def put(client: APIClient, key: str, value: bytes, if_match: str | None = None):
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match}
    return client.generic("PUT", f"{KEYS}/{key}", value, content_type="application/octet-stream", **headers)


def stored(client: APIClient, key: str) -> tuple[int, bytes]:
    body = client.get(f"{KEYS}/{key}").json()
    return body["revision"], base64.b64decode(body["value"])


def assert_412(response, current: int | None) -> dict:
    assert response.status_code == 412, response.content
    body = response.json()
    assert body["code"] == "failed_precondition" and body["error"]
    assert body["current_revision"] == current
    return body


def assert_400(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_argument"


@pytest.fixture
def kv(admin_client: APIClient, make_bucket) -> APIClient:
    """Bucket ``cas`` with key ``k`` at revision 2."""
    make_bucket("cas", history=5)
    put(admin_client, "k", b"one")
    put(admin_client, "k", b"two")
    return admin_client


# --- the key API: PUT ----------------------------------------------------------------


def test_a_weak_tag_of_the_current_revision_is_412_and_writes_nothing(kv: APIClient) -> None:
    body = assert_412(put(kv, "k", b"three", 'W/"2"'), current=2)

    assert "weak" in body["error"]
    assert stored(kv, "k") == (2, b"two")


@pytest.mark.parametrize("if_match", ["2", '"2"', '"1", "2"', '"2","9"', 'W/"2", "2"', ' "9" , , "2" ,'])
def test_a_strong_tag_or_a_list_holding_the_current_revision_writes(kv: APIClient, if_match: str) -> None:
    response = put(kv, "k", b"three", if_match)

    assert response.status_code == 200, response.content
    assert response.json() == {"revision": 3} and response["ETag"] == '"3"'
    assert stored(kv, "k") == (3, b"three")


@pytest.mark.parametrize(
    "if_match",
    ['"1", "3"', 'W/"1", W/"2"', '"abc"', '""', '"02"', '"0"', '"' + "1" * 30 + '"', '"1", W/"2"'],
)
def test_a_list_without_the_current_revision_strongly_is_412(kv: APIClient, if_match: str) -> None:
    assert_412(put(kv, "k", b"three", if_match), current=2)
    assert stored(kv, "k") == (2, b"two")


def test_a_412_names_the_revision_the_key_is_at(kv: APIClient) -> None:
    body = assert_412(put(kv, "k", b"three", '"1", "3"'), current=2)

    assert body["error"] == "key 'k' is at revision 2, not one of 1, 3"


@pytest.mark.parametrize("if_match", MALFORMED)
def test_an_if_match_off_the_grammar_is_400(kv: APIClient, if_match: str) -> None:
    assert_400(put(kv, "k", b"three", if_match))
    assert stored(kv, "k") == (2, b"two")


def test_a_list_on_a_missing_key_is_412_and_creates_nothing(kv: APIClient) -> None:
    assert_412(put(kv, "new", b"x", '"1", "2"'), current=None)

    assert kv.get(f"{KEYS}/new").status_code == 404


def test_star_writes_over_a_current_value_only(kv: APIClient) -> None:
    assert put(kv, "k", b"three", "*").json() == {"revision": 3}

    body = assert_412(put(kv, "new", b"x", "*"), current=None)
    assert body["error"] == "key 'new' has no current value"
    assert kv.get(f"{KEYS}/new").status_code == 404

    assert kv.delete(f"{KEYS}/k").status_code == 204
    assert_412(put(kv, "k", b"back", "*"), current=4)  # the delete marker is the latest entry
    assert kv.get(f"{KEYS}/k").status_code == 404


def test_a_list_still_checks_the_bucket_first(kv: APIClient) -> None:
    response = kv.generic("PUT", "/api/v1/kv/buckets/nope/keys/k", b"x", HTTP_IF_MATCH='"1", "2"')

    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- the key API: DELETE -------------------------------------------------------------


def test_delete_compares_the_same_way(kv: APIClient) -> None:
    assert_412(kv.delete(f"{KEYS}/k", HTTP_IF_MATCH='W/"2"'), current=2)
    assert_412(kv.delete(f"{KEYS}/k?purge=true", HTTP_IF_MATCH='"1", "3"'), current=2)
    assert_400(kv.delete(f"{KEYS}/k", HTTP_IF_MATCH='"2'))
    assert stored(kv, "k") == (2, b"two")

    assert kv.delete(f"{KEYS}/k", HTTP_IF_MATCH='"1", "2"').status_code == 204
    assert kv.get(f"{KEYS}/k").status_code == 404


def test_purge_with_star_needs_a_current_value(kv: APIClient) -> None:
    assert kv.delete(f"{KEYS}/k?purge=true", HTTP_IF_MATCH="*").status_code == 204

    assert_412(kv.delete(f"{KEYS}/k?purge=true", HTTP_IF_MATCH="*"), current=3)
    assert kv.get(f"{KEYS}/k/history").json()["entries"][-1]["operation"] == "purge"


# --- the config API: POST, PATCH, DELETE ------------------------------------------------


def post(client: APIClient, name: str, data: dict, if_match: str | None = None):
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match}
    return client.generic("POST", f"{CONFIG}/{name}", json.dumps(data), content_type="application/json", **headers)


def patch(client: APIClient, name: str, data: dict, if_match: str):
    body = json.dumps(data)
    return client.generic(
        "PATCH", f"{CONFIG}/{name}", body, content_type="application/merge-patch+json", HTTP_IF_MATCH=if_match
    )


@pytest.fixture
def config(admin_client: APIClient) -> APIClient:
    """Document ``app`` at revision 2 holding {"v": 2}."""
    post(admin_client, "app", {"v": 1})
    post(admin_client, "app", {"v": 2})
    return admin_client


def document(client: APIClient) -> tuple[int, dict]:
    body = client.get(f"{CONFIG}/app").json()
    return body["revision"], body["data"]


@pytest.mark.parametrize("if_match", ['W/"2"', '"1", "3"', '"abc"'])
def test_config_writes_refuse_a_weak_or_non_current_tag_with_412(config: APIClient, if_match: str) -> None:
    assert_412(post(config, "app", {"v": 3}, if_match), current=2)
    assert_412(patch(config, "app", {"w": 1}, if_match), current=2)
    assert_412(config.delete(f"{CONFIG}/app", HTTP_IF_MATCH=if_match), current=2)

    assert document(config) == (2, {"v": 2})


@pytest.mark.parametrize("if_match", ['"3', '3"', '"2" x', "1,2"])
def test_config_writes_refuse_a_malformed_if_match_with_400(config: APIClient, if_match: str) -> None:
    assert_400(post(config, "app", {"v": 3}, if_match))
    assert_400(patch(config, "app", {"w": 1}, if_match))
    assert_400(config.delete(f"{CONFIG}/app", HTTP_IF_MATCH=if_match))

    assert document(config) == (2, {"v": 2})


def test_config_writes_accept_a_list_holding_the_current_revision(config: APIClient) -> None:
    assert post(config, "app", {"v": 3}, '"1", "2"').json() == {"name": "app", "revision": 3}
    assert patch(config, "app", {"w": 1}, 'W/"3", "3"').json() == {"name": "app", "revision": 4}
    assert document(config) == (4, {"v": 3, "w": 1})

    assert config.delete(f"{CONFIG}/app", HTTP_IF_MATCH='"4", "9"').status_code == 204
    assert config.get(f"{CONFIG}/app").status_code == 404


def test_config_star_means_the_document_exists(config: APIClient) -> None:
    assert post(config, "app", {"v": 3}, "*").json()["revision"] == 3
    assert patch(config, "app", {"w": 1}, "*").json()["revision"] == 4

    assert_412(post(config, "new", {"v": 1}, "*"), current=None)
    assert config.get(f"{CONFIG}/new").status_code == 404
