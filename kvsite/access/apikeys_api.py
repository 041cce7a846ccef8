"""``/api/v1/apikeys``: list, issue and revoke API keys, with ``apikeys:manage`` on ``apikeys``.

A caller sees and revokes only keys within its own authority, and issues none beyond it
(``kvsite.access.apikeys``). The token of a new key is in the issuing response only, sent
``Cache-Control: no-store``; listings never hold a token or its hash.

Checked with no expression of type ``Any`` allowed (pyproject.toml): request data reaches a
service only as typed values (``apikeys_inputs``), and bodies come typed from ``outputs``.
"""

from rest_framework.request import Request
from rest_framework.response import Response

from kvsite.access.apikeys import apikey_create, apikey_list, apikey_revoke
from kvsite.access.apikeys_inputs import APIKEY_ISSUE_REQUEST, apikey_issue_input
from kvsite.access.audit import audit_actor_from_request
from kvsite.access.authentication import request_principal
from kvsite.access.guard import APIKEYS, Need, whole
from kvsite.access.guarded import GuardedApi
from kvsite.access.outputs import (
    APIKEY_ISSUED_RESPONSES,
    APIKEY_LIST_RESPONSES,
    APIKEY_REVOKED_RESPONSES,
    apikey_issued_body,
    apikey_list_body,
)
from kvsite.access.permissions import APIKEYS_MANAGE
from kvsite.schema import operation_schema

MANAGE = Need(APIKEYS_MANAGE, resource=whole(APIKEYS))


class ApiKeyListCreateApi(GuardedApi):
    access = {"GET": MANAGE, "POST": MANAGE}

    @operation_schema(operation_id="apikeys_list", responses=APIKEY_LIST_RESPONSES)
    def get(self, request: Request) -> Response:
        """Keys within the caller's authority, active first: what each may do, never a token. Needs apikeys:manage."""
        return Response(apikey_list_body(apikey_list(principal=request_principal(request))))

    @operation_schema(operation_id="apikeys_issue", request=APIKEY_ISSUE_REQUEST, responses=APIKEY_ISSUED_RESPONSES)
    def post(self, request: Request) -> Response:
        """Issue a key, no wider than the caller's; its token is in this response only. Needs apikeys:manage."""
        wanted = apikey_issue_input(request)
        issued = apikey_create(
            name=wanted.name,
            role=wanted.role,
            permissions=wanted.permissions,
            scopes=wanted.scopes,
            account=wanted.account,
            expires_at=wanted.expires_at,
            actor=audit_actor_from_request(request),
        )
        return Response(apikey_issued_body(issued), status=201, headers={"Cache-Control": "no-store"})


class ApiKeyRevokeApi(GuardedApi):
    access = {"DELETE": MANAGE}

    @operation_schema(operation_id="apikeys_revoke", responses=APIKEY_REVOKED_RESPONSES)
    def delete(self, request: Request, key_id: int) -> Response:
        """Revoke a key within the caller's authority; it stops working at once. Needs apikeys:manage."""
        apikey_revoke(api_key_id=key_id, actor=audit_actor_from_request(request))
        return Response(status=204)
