"""Who may watch a config document (issue #16): ``config:<environment>``, as the config API decides."""

import asyncio

import pytest

from buckets.configs import services as configs
from kvsite.access import apikeys
from tests.handshake import handshake

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def documents() -> None:
    for environment in ("default", "prod"):
        configs.config_set(environment=environment, name="flags", data={"on": True})


def watch(query: str = "", *scopes: str, role: str = "reader", headers: dict[str, str] | None = None) -> int:
    """The status of a watch of the document ``flags`` by a key with ``scopes`` (200: let in)."""
    token = apikeys.apikey_create(name="watcher", role=role, scopes=list(scopes)).token
    return asyncio.run(
        handshake(f"/api/v1/config/flags/watch?include=current{query}", token=token, headers=headers)
    ).status


def test_a_config_scope_reaches_its_environment_only() -> None:
    assert watch("&environment=prod", "config:prod") == 200
    assert watch("&environment=prod", "config:p*") == 200
    assert watch("&environment=prod", "config:staging") == 403
    assert watch("", "config:prod") == 403  # no environment named: the default one
    assert watch("", "config:default") == 200


def test_the_environment_header_names_the_resource_too() -> None:
    assert watch("", "config:prod", headers={"X-Ironflow-Environment-ID": "prod"}) == 200
    assert watch("", "config:default", headers={"X-Ironflow-Environment-ID": "prod"}) == 403
    # The query parameter wins over the header, for the resource as for the bucket watched.
    assert watch("&environment=default", "config:default", headers={"X-Ironflow-Environment-ID": "prod"}) == 200


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:*prod*", "bucket:SYS_config_*", "bucket:*_*", "secrets:*"])
def test_a_scope_of_another_kind_reaches_no_config(scope: str) -> None:
    assert watch("&environment=prod", scope) == 403
    assert watch("", scope) == 403


def test_no_scopes_is_every_environment_within_the_permissions() -> None:
    assert watch("&environment=prod") == 200
    metrics_only = apikeys.apikey_create(name="m", role="none", permissions=["metrics:read"]).token
    refused = asyncio.run(handshake("/api/v1/config/flags/watch", token=metrics_only))
    assert (refused.status, refused.frame["code"]) == (403, "permission_denied")


def test_access_is_decided_before_the_names_are_checked() -> None:
    # A caller without access learns nothing from a 400 about the document or environment name.
    assert watch("&environment=bad..env", "config:prod") == 403
    assert watch("&environment=bad..env") == 400
