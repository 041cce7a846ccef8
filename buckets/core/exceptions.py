"""The error vocabulary every layer raises, and the storage core's own errors.

Each error is a meaning with the HTTP status and gRPC-style code it maps to
(``not_found``, ``failed_precondition``, ...); ``kvsite/http/errors.py`` turns them
into responses. They live in the core, the bottom layer, so the core raises them
without importing any interface.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buckets.core.conditions import IfMatch


class DomainError(Exception):
    """An error the caller can act on; carries its HTTP status and code."""

    status = 400
    code = "invalid_argument"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgument(DomainError):
    status, code = 400, "invalid_argument"


class LengthRequired(DomainError):
    """A chunked body the server in front of kvsite gives no way to read to its end."""

    status, code = 411, "length_required"


class Unauthenticated(DomainError):
    status, code = 401, "unauthenticated"


class PermissionDenied(DomainError):
    status, code = 403, "permission_denied"


class NotFound(DomainError):
    status, code = 404, "not_found"


class AlreadyExists(DomainError):
    status, code = 409, "already_exists"


class Aborted(DomainError):
    """A compare-and-swap lost: the entry is at another version than the caller said."""

    status, code = 409, "aborted"


class PreconditionFailed(DomainError):
    status, code = 412, "failed_precondition"


class ValueTooLarge(DomainError):
    status, code = 413, "resource_exhausted"


class RateLimited(DomainError):
    status, code = 429, "resource_exhausted"


class StorageFull(DomainError):
    status, code = 507, "failed_precondition"


class Unimplemented(DomainError):
    """A transfer coding kvsite does not decode (RFC 9112 6.1: 501)."""

    status, code = 501, "unimplemented"


class Unavailable(DomainError):
    status, code = 503, "unavailable"


class BucketNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"bucket {name!r} not found")


class BucketExists(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"bucket {name!r} already exists")


class KeyNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")


class RevisionNotFound(NotFound):
    def __init__(self, key: str, revision: int) -> None:
        super().__init__(f"key {key!r} has no kept revision {revision}")


class KeyExists(PreconditionFailed):
    def __init__(self, key: str, revision: int) -> None:
        super().__init__(f"key {key!r} already exists", current_revision=revision)


class RevisionMismatch(PreconditionFailed):
    def __init__(self, key: str, expected: int, current: int | None) -> None:
        message = f"key {key!r} is at revision {current}, not {expected}" if current else f"key {key!r} does not exist"
        super().__init__(message, current_revision=current)
        self.current = current


class IfMatchFailed(PreconditionFailed):
    """The key is not at a revision an If-Match of several entity-tags, weak ones or ``*`` accepts."""

    def __init__(self, key: str, condition: "IfMatch", current: int | None) -> None:
        if condition.any_value:
            message = f"key {key!r} has no current value"
        elif current is None:
            message = f"key {key!r} does not exist"
        elif condition.revisions:
            named = ", ".join(str(revision) for revision in sorted(condition.revisions))
            if len(condition.revisions) > 1:
                named = "one of " + named
            message = f"key {key!r} is at revision {current}, not {named}"
        else:
            message = f"key {key!r} is at revision {current}; the condition names no revision"
        if condition.weak_tags:
            message += "; If-Match compares entity-tags strongly, so a weak one (W/...) never matches"
        super().__init__(message, current_revision=current)


class ValueTooBig(ValueTooLarge):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"value is {size} bytes; this bucket allows at most {limit}")


class KeyLimitReached(StorageFull):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the bucket already holds its maximum of {limit} keys")


class BucketFull(StorageFull):
    def __init__(self, limit: int) -> None:
        super().__init__(f"write would take the bucket over its max_bytes of {limit}")


class SealedValueUnreadable(DomainError):
    """A sealed value's envelope failed to open: altered, truncated or copied from elsewhere.

    gRPC's DATA_LOSS (HTTP 500): the caller can do nothing about it, an operator
    must restore the value; the response is still a plain JSON error.
    """

    status, code = 500, "data_loss"


class MasterKeyMissing(DomainError):
    """The envelope names a master key that KV_MASTER_KEYS no longer holds."""

    status, code = 500, "data_loss"
