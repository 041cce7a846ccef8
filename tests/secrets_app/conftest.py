"""Secrets fixtures (from ``tests/fixtures/secrets.py``, shared with the audit log's tests); every test here seals
under a known master key."""

import pytest

from tests.fixtures.secrets import (  # noqa: F401  (pytest fixtures, and constants the tests here import)
    KEY_NEW,
    KEY_OLD,
    PLAINTEXT,
    env_client,
    flip_last_byte,
    make_secret,
    master_keys,
    system,
)
from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture: real server processes)


@pytest.fixture(autouse=True)
def _known_master_keys(master_keys) -> None:  # noqa: F811
    """Every secrets test seals under a known key, whatever the machine's environment says."""
