"""Dashboard fixtures: settings for the test client, staff and non-staff clients, one of everything the pages show."""

import base64
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from buckets.configs import services as configs
from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access.audit import audit_actor_system
from secrets_app import services as secrets

MASTER_KEY = "dash:" + base64.b64encode(bytes(range(32))).decode()
PLAINTEXT = "dashboard-PLAINTEXT-CANARY-4c1d"


@pytest.fixture(autouse=True)
def dashboard_settings() -> Iterator[None]:
    """A known master key, and a fast password hasher (the default one takes most of a second per user).

    The browser tests (``test_browser.py``) override this fixture: their server runs in
    another process, with its own settings, and must check the passwords made here.
    """
    with override_settings(
        KV_MASTER_KEYS=MASTER_KEY, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    ):
        yield


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", password="pw-ops-123456", is_staff=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def member_client(db) -> Client:
    user = get_user_model().objects.create_user("member", password="pw-member-123456")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db) -> dict:
    """One of everything the pages show: a bucket with a key, a config document, a secret."""
    store.bucket_create(name=app_bucket("orders"), description="Order data", history=5)
    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b'{"total": 12}')
    system = audit_actor_system(name="tests")
    configs.config_set(
        environment="default", name="flags", data={"beta": False, "theme": "dark", "search": True}, actor=system
    )
    secrets.secret_create(environment="prod", name="db/password", value=PLAINTEXT, actor=system)
    return {}


def page_text(response) -> str:
    return response.content.decode()
