"""Shared fixtures: API clients per role, bucket factory, a controllable clock."""

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from buckets.core import clock as kv_clock
from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access import apikeys


@pytest.fixture(autouse=True)
def _fresh_api_key_cache() -> Iterator[None]:
    apikeys._cache.clear()
    yield
    apikeys._cache.clear()


@pytest.fixture
def issue_token(db) -> Callable[..., str]:
    def issue(role: str = "admin", *, buckets: str = "", name: str | None = None) -> str:
        return apikeys.apikey_create(
            name=name or f"{role}-key", role=role, scopes=[f"bucket:{buckets}"] if buckets else []
        ).token

    return issue


@pytest.fixture
def client_for(issue_token) -> Callable[..., APIClient]:
    """An API client authenticated with a fresh key of ``role``."""

    def make(role: str = "admin", *, buckets: str = "") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(role, buckets=buckets)}")
        return client

    return make


@pytest.fixture
def admin_client(client_for) -> APIClient:
    return client_for("admin")


@pytest.fixture
def make_bucket(db) -> Callable[..., str]:
    """Create a user bucket through the core; returns its public name."""

    def make(name: str = "settings", **options) -> str:
        store.bucket_create(name=app_bucket(name), **options)
        return name

    return make


class Clock:
    """Moves the storage core's clock forward (expiry is decided against it)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
        kv_clock.set_offset(self.offset)


@pytest.fixture
def clock() -> Iterator[Clock]:
    controlled = Clock()
    yield controlled
    kv_clock.set_offset(timedelta(0))


@pytest.fixture
def postgres_only(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")
