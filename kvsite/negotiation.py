"""Rendering and content negotiation for the JSON-only API views."""

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer

from kvsite.jsonbody import dump_json_exact


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Always the view's first parser and renderer (JSON).

    DRF's default parses the Accept header and query string on every request to
    pick among renderers these views do not have: ~10% of a key read's CPU.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExactJsonRenderer(BaseRenderer):
    """Renders with ``dump_json_exact``: a JsonNumber as its literal text, RawJson verbatim."""

    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259); no charset parameter

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        return b"" if data is None else dump_json_exact(data)
