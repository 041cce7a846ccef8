"""The base of every API view: it declares its access, and the default permission decides it."""

from collections.abc import Mapping
from typing import ClassVar

from rest_framework.views import APIView

from kvsite.access.guard import Need, Resource


# An API view whose ``access`` maps each method it answers to its ``Need``. ``DeclaredAccess`` (the
# default permission) decides before the handler runs and leaves the resource it decided on in
# ``resource``, for the handler's audit rows; tests/kvsite/access/test_guard.py walks the URL conf and
# fails on a method without a declaration. (A comment, not a docstring: drf-spectacular would show a
# class docstring as the description of every operation of every view that has none of its own.)
class GuardedApi(APIView):
    access: ClassVar[Mapping[str, Need]] = {}
    resource: Resource
