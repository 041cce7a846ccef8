"""Errors of the KV core, each with the HTTP status and code it maps to."""

from typing import TYPE_CHECKING

from kvsite.http.errors import AlreadyExists, DomainError, NotFound, PreconditionFailed, StorageFull, ValueTooLarge

if TYPE_CHECKING:
    from buckets.core.conditions import IfMatch


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
