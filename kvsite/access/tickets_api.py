"""``POST /api/v1/ws-ticket``: trade the request's credential for a single-use WebSocket ticket.

Checked with no expression of type ``Any`` allowed (pyproject.toml): request data reaches a
service only as typed values, and bodies come typed from ``outputs``.
"""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvsite.access.authentication import request_principal
from kvsite.access.outputs import WS_TICKET_RESPONSES, ws_ticket_body
from kvsite.access.tickets import ticket_create
from kvsite.schema import operation_schema


class WsTicketCreateApi(APIView):
    @operation_schema(operation_id="ws_ticket_create", request=None, responses=WS_TICKET_RESPONSES)
    def post(self, request: Request) -> Response:
        issued = ticket_create(principal=request_principal(request))
        return Response(ws_ticket_body(issued), status=201)
