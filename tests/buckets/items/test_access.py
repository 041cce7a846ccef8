"""Who reaches an account's items (issue #16): ``items:<account>``, never a scope of another kind."""

import json
import secrets
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from kvsite.access import apikeys

pytestmark = pytest.mark.django_db

# (method, path, body) of every items route.
ROUTES = [
    ("get", "/kv/items", None),
    ("get", "/kv/limits", None),
    ("get", "/kv/items/k", None),
    ("put", "/kv/items/k", {"value": 1}),
    ("delete", "/kv/items/k", None),
]


@pytest.fixture(autouse=True)
def _own_rate_limit_buckets(settings) -> None:
    settings.KV_ITEMS_RATELIMIT_PREFIX = f"kvtest-items-{secrets.token_hex(6)}"


@pytest.fixture
def scoped(db) -> Callable[..., APIClient]:
    """A client whose key is in ``account`` with exactly ``scopes``."""

    def make(*scopes: str, account: str = "acme", role: str = "admin") -> APIClient:
        token = apikeys.apikey_create(name="k", role=role, scopes=list(scopes), account=account).token
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


def call(client: APIClient, method: str, path: str, body):
    if body is not None:
        return client.generic(method.upper(), path, json.dumps(body).encode(), content_type="application/json")
    return getattr(client, method)(path)


@pytest.fixture(autouse=True)
def item_k(scoped) -> None:
    assert call(scoped(), "put", "/kv/items/k", {"value": 0}).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("scope", ["bucket:*", "bucket:items-*", "bucket:*acme*", "namespace:*", "items:other"])
def test_a_scope_that_does_not_name_the_account_is_refused(scoped, scope, method, path, body) -> None:
    response = call(scoped(scope), method, path, body)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert response.json()["data"] is None


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("scope", ["items:acme", "items:ac*", "items:*"])
def test_an_items_scope_that_names_the_account_gets_in(scoped, scope, method, path, body) -> None:
    assert call(scoped(scope, "bucket:x"), method, path, body).status_code == 200


def test_a_keys_own_account_is_named_as_the_key_is(db) -> None:
    issued = apikeys.apikey_create(name="k7", role="writer", scopes=["items:key-*"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    account = issued.api_key.account

    assert account.startswith("key-")
    assert call(client, "put", "/kv/items/mine", {"value": 1}).status_code == 200
    assert client.get("/kv/limits").json()["data"]["account"] == account
    other = apikeys.apikey_create(name="k8", role="writer", scopes=[f"items:{account}x"]).token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get("/kv/items/mine").status_code == 403


def test_permissions_still_decide_within_the_scope(scoped) -> None:
    reader = scoped("items:acme", role="reader")

    assert call(reader, "get", "/kv/items/k", None).status_code == 200
    assert call(reader, "put", "/kv/items/k", {"value": 2}).status_code == 403
    assert call(reader, "delete", "/kv/items/k", None).status_code == 403
