"""Rendering and content negotiation for the JSON-only API views."""

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from kvsite.http.jsonbody import dump_json_exact

JSON = "application/json"


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, with no charset or UTF-8 (RFC 8259: JSON is UTF-8)."""
    main, _, parameters = content_type.partition(";")
    kind, _, subtype = main.strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5)):
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Every API view answers JSON, whatever ``Accept`` says; a body is read only if its Content-Type is JSON.

    DRF's default parses the Accept header and query string on every request to
    choose among renderers these views do not have (a few microseconds), and
    answers a client that asked for ``text/html`` with a 406 when JSON was all
    there ever was. The API default (settings); the OpenAPI schema view, which
    does offer JSON and YAML, keeps DRF's negotiation.

    Bodies: DRF's media-type matching knows no ``+json`` suffix and lets a
    ``*/*`` or ``application/*`` Content-Type pick the JSON parser, so JSON
    types are matched here: ``application/json`` and ``application/*+json``
    (``application/merge-patch+json``) go to the view's JSON parser, anything
    else finds none and is a 415.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        if is_json_media_type(request.content_type):
            return next((parser for parser in parsers if parser.media_type == JSON), None)
        return super().select_parser(request, [parser for parser in parsers if parser.media_type != JSON])


class ExactJsonRenderer(BaseRenderer):
    """Renders with ``dump_json_exact``: a JsonNumber as its literal text, RawJson verbatim."""

    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259); no charset parameter

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        return b"" if data is None else dump_json_exact(data)
