"""What the items routes touch (``kvsite.access.guard``): the caller's account, ``items:<account>``."""

from buckets.core.exceptions import PermissionDenied
from kvsite.access.guard import ITEMS, Call, Resource


def items_account(call: Call) -> Resource:
    """The resolver of every items route: the items of the caller's own account.

    A principal without an account has no items to touch (a 403, as before the guard).
    """
    account = call.principal.account
    if not account:
        raise PermissionDenied("this API key has no account; issue one with createapikey --account")
    return Resource(ITEMS, account)
