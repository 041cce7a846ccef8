"""Rendering and content negotiation for the JSON-only API views."""

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from kvsite.jsonbody import dump_json_exact


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Every API view answers JSON, whatever ``Accept`` says; bodies are still parsed by Content-Type.

    DRF's default parses the Accept header and query string on every request to
    choose among renderers these views do not have (a few microseconds), and
    answers a client that asked for ``text/html`` with a 406 when JSON was all
    there ever was. The API default (settings); the OpenAPI schema view, which
    does offer JSON and YAML, keeps DRF's negotiation.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExactJsonRenderer(BaseRenderer):
    """Renders with ``dump_json_exact``: a JsonNumber as its literal text, RawJson verbatim."""

    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259); no charset parameter

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        return b"" if data is None else dump_json_exact(data)
