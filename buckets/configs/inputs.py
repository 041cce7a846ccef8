"""The config API's request inputs: the environment a request names, a rollback's revision."""

from typing import Any

from rest_framework.request import Request

from buckets.configs.services import DEFAULT_ENVIRONMENT
from buckets.core.exceptions import InvalidArgument


def environment_of(request: Request) -> str:
    """``X-Ironflow-Environment-ID``, or the default environment (checked where the bucket is named)."""
    return request.headers.get("X-Ironflow-Environment-ID") or DEFAULT_ENVIRONMENT


def rollback_revision(body: Any) -> int:
    """The revision of a rollback body, ``{"revision": <positive integer>}``."""
    revision = body.get("revision") if isinstance(body, dict) else None
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise InvalidArgument('body must be {"revision": <positive integer>}')
    return revision
