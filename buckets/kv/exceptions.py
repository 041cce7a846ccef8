"""The bucket API's own errors; each carries its HTTP status and code (``buckets/core/exceptions.py``)."""

from buckets.core.exceptions import DomainError


class BucketOwnedByNamespace(DomainError):
    """A write through the bucket API to the bucket a namespace keeps its entries in."""

    status, code = 409, "failed_precondition"

    def __init__(self, *, bucket: str, namespace: str) -> None:
        super().__init__(
            f"bucket {bucket!r} holds the entries of namespace {namespace!r}: change them through the namespaces "
            "API (/api/v1/kv/namespaces, /api/v1/kv/{namespaceId}/entries); the bucket API only reads them"
        )
