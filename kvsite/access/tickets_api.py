"""``POST /api/v1/ws-ticket``: trade the request's credential for a single-use WebSocket ticket."""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvsite.access.authentication import request_principal
from kvsite.access.tickets import IssuedTicket, ticket_create
from kvsite.http.errors import ErrorOutput


class WsTicketOutput(serializers.Serializer[IssuedTicket]):
    ticket = serializers.CharField(help_text="Pass as ?ticket= when opening one WebSocket; single use.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid if unused.")


class WsTicketCreateApi(APIView):
    @extend_schema(
        operation_id="ws_ticket_create",
        request=None,
        responses={201: WsTicketOutput, 401: OpenApiResponse(ErrorOutput), 403: OpenApiResponse(ErrorOutput)},
    )
    def post(self, request: Request) -> Response:
        issued = ticket_create(principal=request_principal(request))
        return Response(WsTicketOutput(issued).data, status=201)


# Included by kvsite/urls.py at ``api/v1/ws-ticket``.
urlpatterns = [path("", WsTicketCreateApi.as_view(), name="ws-ticket")]
