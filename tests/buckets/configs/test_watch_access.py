"""Who may watch a config document (issue #16): ``config:<environment>``, as the config API decides."""

import asyncio

import pytest

from buckets.configs import services as configs
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from tests.handshake import handshake

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def documents() -> None:
    for environment in ("default", "prod"):
        configs.config_set(
            environment=environment, name="flags", data={"on": True}, actor=audit_actor_system(name="tests")
        )


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
    # Both naming the same environment is fine; naming two is a 400, as over REST.
    assert watch("&environment=prod", "config:prod", headers={"X-Ironflow-Environment-ID": "prod"}) == 200
    assert watch("&environment=default", "config:default", headers={"X-Ironflow-Environment-ID": "prod"}) == 400


@pytest.mark.parametrize("scope", ["bucket:*", "bucket:*prod*", "bucket:SYS_config_*", "bucket:*_*", "secrets:*"])
def test_a_scope_of_another_kind_reaches_no_config(scope: str) -> None:
    assert watch("&environment=prod", scope) == 403
    assert watch("", scope) == 403


def test_no_scopes_is_every_environment_within_the_permissions() -> None:
    assert watch("&environment=prod") == 200
    metrics_only = apikeys.apikey_create(name="m", role="none", permissions=["metrics:read"]).token
    refused = asyncio.run(handshake("/api/v1/config/flags/watch", token=metrics_only))
    assert (refused.status, refused.frame["code"]) == (403, "permission_denied")


def test_a_malformed_environment_is_a_400_as_over_rest() -> None:
    # One resolver reads the environment for REST and the watch (buckets/configs/inputs.config_resource):
    # a malformed name says nothing about any resource, so it is a 400 whoever asks.
    assert watch("&environment=bad..env", "config:prod") == 400
    assert watch("&environment=bad..env") == 400
