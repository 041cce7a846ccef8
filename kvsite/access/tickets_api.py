"""``POST /api/v1/ws-ticket``: trade the request's credential for a single-use WebSocket ticket.

Checked with no expression of type ``Any`` allowed (pyproject.toml): request data reaches a
service only as typed values, and bodies come typed from ``outputs``.
"""

from rest_framework.request import Request
from rest_framework.response import Response

from kvsite.access.authentication import request_principal, request_session_key
from kvsite.access.guard import SELF, Call, Need, Resource
from kvsite.access.guarded import GuardedApi
from kvsite.access.outputs import WS_TICKET_RESPONSES, ws_ticket_body
from kvsite.access.permissions import CONFIG_READ, ENTRY_READ
from kvsite.access.tickets import ticket_create
from kvsite.schema import operation_schema

# A ticket is only good for opening a watch, and every watch needs one of these.
WATCH_PERMISSIONS = (ENTRY_READ, CONFIG_READ)


def own_tickets(call: Call) -> Resource:
    """A ticket is the caller's own: no scope limits issuing it; the watch it opens decides on its bucket."""
    return Resource(SELF)


class WsTicketCreateApi(GuardedApi):
    access = {"POST": Need(*WATCH_PERMISSIONS, resource=own_tickets)}

    @operation_schema(operation_id="ws_ticket_create", request=None, responses=WS_TICKET_RESPONSES)
    def post(self, request: Request) -> Response:
        issued = ticket_create(principal=request_principal(request), session_key=request_session_key(request))
        return Response(ws_ticket_body(issued), status=201)
