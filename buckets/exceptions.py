"""Errors of the KV core, each with the HTTP status and code it maps to."""

from kvsite.errors import AlreadyExists, NotFound, PreconditionFailed, StorageFull, ValueTooLarge


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


class ValueTooBig(ValueTooLarge):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"value is {size} bytes; this bucket allows at most {limit}")


class KeyLimitReached(StorageFull):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the bucket already holds its maximum of {limit} keys")


class BucketFull(StorageFull):
    def __init__(self, limit: int) -> None:
        super().__init__(f"write would take the bucket over its max_bytes of {limit}")
