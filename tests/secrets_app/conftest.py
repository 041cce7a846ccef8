"""Secrets fixtures: known master keys, environment-scoped API clients, a secret factory."""

import base64
from collections.abc import Callable, Iterator

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from kvsite.access.audit import AuditActor, audit_actor_system
from secrets_app import services
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture: real server processes)

ENVIRONMENT = "prod"
KEY_OLD = "old:" + base64.b64encode(bytes(range(32))).decode()
KEY_NEW = "new:" + base64.b64encode(bytes(range(100, 132))).decode()
# Recognisable, and unlikely to appear in any database page by chance.
PLAINTEXT = "hunter2-PLAINTEXT-CANARY-7f3a9c"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    """Every secrets test seals under a known key, whatever the machine's environment says."""
    with override_settings(KV_MASTER_KEYS=KEY_OLD):
        yield


@pytest.fixture
def env_client(client_for) -> Callable[..., APIClient]:
    """An API client of ``role`` that sends the environment header."""

    def make(role: str = "admin", *, environment: str = ENVIRONMENT, buckets: str = "") -> APIClient:
        client = client_for(role, buckets=buckets)
        client.credentials(
            HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"],
            HTTP_X_IRONFLOW_ENVIRONMENT_ID=environment,
        )
        return client

    return make


@pytest.fixture
def system() -> AuditActor:
    return audit_actor_system(name="tests")


@pytest.fixture
def make_secret(db, system) -> Callable[..., services.SecretInfo]:
    """Create a secret through the service (as the system actor)."""

    def make(name: str = "db/password", value: str = PLAINTEXT, *, environment: str = ENVIRONMENT, **options):
        return services.secret_create(environment=environment, name=name, value=value, actor=system, **options)

    return make


def flip_last_byte(stored: bytes) -> bytes:
    """Tamper with a sealed value for sure (overwriting with a fixed byte is a no-op 1 time in 256)."""
    return stored[:-1] + bytes([stored[-1] ^ 0x01])
