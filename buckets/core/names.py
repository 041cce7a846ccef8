"""Bucket names: the public (unprefixed) form and the internal, prefixed one.

User buckets live under ``APP_``; ``SYS_config_`` and ``SYS_secrets_`` hold the
config and secrets features. The bucket API only ever builds ``APP_`` names, so
a ``SYS_`` bucket cannot be named through it.
"""

import re

from buckets.core.exceptions import InvalidArgument

APP_PREFIX = "APP_"
SYS_CONFIG_PREFIX = "SYS_config_"
SYS_SECRETS_PREFIX = "SYS_secrets_"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


def is_plain_name(name: object) -> bool:
    """1-64 letters, digits, '-' and '_': the shape of bucket, namespace and environment names."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def validate_bucket_name(name: str) -> str:
    if not is_plain_name(name):
        raise InvalidArgument("bucket name must be 1-64 characters of letters, digits, '-' and '_'")
    return name


def app_bucket(name: str) -> str:
    """The internal name of the user bucket ``name``."""
    return APP_PREFIX + validate_bucket_name(name)


# The items API keeps each account's items in the user bucket ``items-<account>`` (buckets/items):
# the bucket API names such a bucket as the account it belongs to, and never creates one.
ITEMS_BUCKET_PREFIX = "items-"


def new_app_bucket(name: str) -> str:
    """The internal name for a user bucket about to be created.

    ``SYS_`` is refused here, not in ``app_bucket``: a read of ``SYS_x`` through the
    bucket API simply finds no ``APP_SYS_x`` (404), while creating one would give
    a user bucket whose public name looks internal.
    """
    if name.startswith("SYS_"):
        raise InvalidArgument("bucket names starting with SYS_ are reserved")
    if name.startswith(ITEMS_BUCKET_PREFIX):
        # Else anyone could make an account's bucket before its owner and plant items there.
        raise InvalidArgument(f"bucket names starting with {ITEMS_BUCKET_PREFIX} are the items API's accounts")
    return app_bucket(name)


def public_name(internal: str) -> str:
    return internal[len(APP_PREFIX) :] if internal.startswith(APP_PREFIX) else internal
