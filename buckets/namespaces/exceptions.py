"""The namespaces dialect's errors; each carries its HTTP status and code (``buckets/core/exceptions.py``)."""

import uuid

from buckets.core.exceptions import Aborted, AlreadyExists, DomainError, NotFound


class NamespaceNotFound(NotFound):
    def __init__(self, namespace_id: uuid.UUID | str) -> None:
        super().__init__(f"namespace {str(namespace_id)!r} not found")


class NamespaceExists(AlreadyExists):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class NamespaceNotEmpty(DomainError):
    status, code = 409, "failed_precondition"


class NamespaceChanged(Aborted):
    """Renamed or moved between the access decision and the operation: tried again, it is decided again."""

    def __init__(self, namespace_id: uuid.UUID | str) -> None:
        super().__init__(f"namespace {str(namespace_id)!r} was renamed or moved meanwhile; try again")


class RecordMalformed(DomainError):
    """A stored value that claims the record format (``records``) but is not a well-formed record.

    Written by other means (the bucket API, an import): nothing this API does can read it,
    so a read or a write of it is refused (409) naming the key; deleting it needs no reading.
    """

    status, code = 409, "failed_precondition"

    def __init__(self, key_path: str, problem: str) -> None:
        super().__init__(
            f"entry {key_path!r} holds a malformed record ({problem}), not written by this API; "
            "delete the entry and write it again"
        )


class EntryNotFound(NotFound):
    def __init__(self, key_path: str) -> None:
        super().__init__(f"entry {key_path!r} not found")


class VersionNotFound(NotFound):
    def __init__(self, key_path: str, version: int) -> None:
        super().__init__(f"entry {key_path!r} has no kept version {version}")


class VersionMismatch(Aborted):
    def __init__(self, key_path: str, expected: int, current: int | None) -> None:
        message = (
            f"entry {key_path!r} is at version {current}, not {expected}"
            if current is not None
            else f"entry {key_path!r} does not exist (expected version {expected})"
        )
        super().__init__(message, currentVersion=current)
        self.current = current


class BulkRejected(DomainError):
    """A bulk call refused as a whole; ``errors`` names each refused item (index, keyPath, error, code)."""

    def __init__(self, *, operation: str, total: int, failures: list[tuple[int, str, DomainError]]) -> None:
        errors = []
        for index, key_path, error in failures:
            item = {"index": index, "keyPath": key_path, "error": error.message, "code": error.code}
            if isinstance(error, VersionMismatch):
                item["currentVersion"] = error.current
            errors.append(item)
        super().__init__(
            f"bulk {operation}: {len(failures)} of {total} item(s) refused; nothing was written", errors=errors
        )
        self.status, self.code = failures[0][2].status, failures[0][2].code
