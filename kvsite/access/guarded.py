"""The base of every API view: it declares its access, and the default permission decides it."""

from collections.abc import Mapping
from typing import ClassVar

from rest_framework.request import Request
from rest_framework.views import APIView

from buckets.core.exceptions import DomainError
from kvsite.access.guard import Need, Resource


# An API view whose ``access`` maps each method it answers to its ``Need``. ``DeclaredAccess`` (the
# default permission) decides before the handler runs and leaves the resource it decided on in
# ``resource``, for the handler's audit rows; tests/kvsite/access/test_guard.py walks the URL conf and
# fails on a method without a declaration. (A comment, not a docstring: drf-spectacular would show a
# class docstring as the description of every operation of every view that has none of its own.)
class GuardedApi(APIView):
    access: ClassVar[Mapping[str, Need]] = {}
    resource: Resource

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        """Called by ``DeclaredAccess`` when it refuses a call, before the error is answered; by default nothing.

        ``error`` is the 403, or the resolver's own 400 or 404; ``resource`` is what the call
        named, or None when it was refused before that was resolved (a missing permission, or
        the resolver's own refusal). A dialect whose refusals are on the audit log overrides
        this once, in its base view, with ``kvsite.access.audit.audit_refused``: the handler,
        whose audited operation would have recorded them, never runs.
        """
