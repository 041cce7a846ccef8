"""Errors of the secrets feature, each with the HTTP status and code it maps to.

Messages name secrets and environments, never values.
"""

from buckets.core.exceptions import AlreadyExists, InvalidArgument, NotFound


class EnvironmentMissing(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("the X-Ironflow-Environment-ID header is required")


class SecretNotFound(NotFound):
    def __init__(self, name: str, environment: str) -> None:
        super().__init__(f"secret {name!r} not found in environment {environment!r}")


class SecretExists(AlreadyExists):
    def __init__(self, name: str, environment: str) -> None:
        super().__init__(f"secret {name!r} already exists in environment {environment!r}")
