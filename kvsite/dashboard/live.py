"""Where the pages' live updates come from.

Bucket pages use the key watch socket (``/api/v1/kv/buckets/{bucket}/watch``);
config documents use the config watch socket
(``/api/v1/config/{name}/watch?environment=<env>``). Both accept the staff
session cookie.
"""

from urllib.parse import quote, urlencode


def config_watch_url(*, environment: str, name: str) -> str:
    """The path of the config watch socket for one document."""
    return f"/api/v1/config/{quote(name, safe='/')}/watch?{urlencode({'environment': environment})}"
