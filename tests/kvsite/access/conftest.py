"""The audit log's tests drive it with secret operations: the secrets fixtures, from ``tests/fixtures/secrets.py``."""

from tests.fixtures.secrets import env_client, make_secret, master_keys, system  # noqa: F401  (pytest fixtures)
