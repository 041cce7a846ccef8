"""Content negotiation for the JSON-only API views."""

from rest_framework.negotiation import BaseContentNegotiation


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Always the view's first parser and renderer (JSON).

    DRF's default parses the Accept header and query string on every request to
    pick among renderers these views do not have: ~10% of a key read's CPU.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
