"""Errors of the secrets feature, each with the HTTP status and code it maps to.

Messages name secrets and environments, never values.
"""

from kvsite.http.errors import AlreadyExists, DomainError, InvalidArgument, NotFound


class EnvironmentMissing(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("the X-Ironflow-Environment-ID header is required")


class SecretNotFound(NotFound):
    def __init__(self, name: str, environment: str) -> None:
        super().__init__(f"secret {name!r} not found in environment {environment!r}")


class SecretExists(AlreadyExists):
    def __init__(self, name: str, environment: str) -> None:
        super().__init__(f"secret {name!r} already exists in environment {environment!r}")


class SecretUnreadable(DomainError):
    """A stored envelope failed to open: altered, truncated or copied from elsewhere.

    gRPC's DATA_LOSS (HTTP 500): the caller can do nothing about it, an operator
    must restore the value; the response is still a plain JSON error.
    """

    status, code = 500, "data_loss"


class SecretKeyMissing(DomainError):
    """The envelope names a master key that KV_MASTER_KEYS no longer holds."""

    status, code = 500, "data_loss"
