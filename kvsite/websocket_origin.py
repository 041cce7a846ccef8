"""Origin checks for WebSocket handshakes that do not lock out API clients."""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Refuse a foreign ``Origin``; allow a handshake that sends none.

    The check exists against cross-site WebSocket hijacking: a page on another
    site riding the dashboard's session cookie. Browsers always send ``Origin``
    on a WebSocket handshake, so a foreign one is refused. A client without it
    is not a browser, and authenticates with a bearer token or a ticket, which
    no other site can make it send.
    """

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


def browser_origin_validator(application) -> BrowserOriginValidator:
    return BrowserOriginValidator(application, settings.ALLOWED_HOSTS)
