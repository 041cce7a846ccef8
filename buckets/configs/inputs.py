"""The config API's request inputs: the environment a request names (its resource), a rollback's revision."""

from typing import Any

from rest_framework.request import Request

from buckets.configs.services import DEFAULT_ENVIRONMENT, config_bucket
from buckets.core.exceptions import InvalidArgument
from kvsite.access.guard import CONFIG, Call, Resource

ENVIRONMENT_HEADER = "X-Ironflow-Environment-ID"
ENVIRONMENT_QUERY = "environment"


def environment_named(*, header: str, query: str) -> str:
    """The environment named by ``X-Ironflow-Environment-ID`` or ``?environment=`` (the default if neither).

    Both may be sent if they agree; two different names are a 400, never a silent choice. A
    malformed name is a 400 too, so every environment a scope is matched against is a real name.
    """
    if header and query and header != query:
        raise InvalidArgument(f"{ENVIRONMENT_HEADER} and ?{ENVIRONMENT_QUERY}= name different environments")
    environment = header or query or DEFAULT_ENVIRONMENT
    config_bucket(environment)  # InvalidArgument for a malformed id
    return environment


def config_resource(call: Call) -> Resource:
    """The resource of a config request: ``config:<environment>``, the environment its header or query names."""
    environment = environment_named(
        header=call.headers.get(ENVIRONMENT_HEADER.lower(), ""), query=call.query.get(ENVIRONMENT_QUERY, "")
    )
    return Resource(CONFIG, environment)


def environment_tried(request: Request) -> str:
    """The environment a refused request named, for its audit row: "" if it named none that could exist."""
    try:
        return environment_named(
            header=request.headers.get(ENVIRONMENT_HEADER, ""), query=request.query_params.get(ENVIRONMENT_QUERY, "")
        )
    except InvalidArgument:
        return ""


def rollback_revision(body: Any) -> int:
    """The revision of a rollback body, ``{"revision": <positive integer>}``."""
    revision = body.get("revision") if isinstance(body, dict) else None
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise InvalidArgument('body must be {"revision": <positive integer>}')
    return revision
