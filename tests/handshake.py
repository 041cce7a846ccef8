"""Drive one WebSocket handshake through the project's ASGI application, without a server.

Channels' ``WebsocketCommunicator`` needs daphne; this is the same drive by hand. Its scope,
like daphne's, offers no ``websocket.http.response`` extension, so a refusal is an accepted
socket, one error frame and a 44xx close, and an accepted watch with ``include=current``
sends ``ready`` once it has sent the current values.
"""

import json
from dataclasses import dataclass

from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.db import connections


@dataclass(frozen=True)
class Handshake:
    frame: dict  # the first frame: an error frame when refused
    close_code: int | None  # None: the socket stayed open (the watch was let in)

    @property
    def status(self) -> int:
        """The HTTP status a server with the denial extension would have answered (200: let in)."""
        return 200 if self.close_code is None else self.close_code - 4000


async def handshake(path: str, *, token: str | None = None, headers: dict[str, str] | None = None) -> Handshake:
    """Open ``path`` on the site's own origin, take the first frame, and hang up."""
    from kvsite.asgi import application

    raw_path, _, query = path.partition("?")
    sent = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    if token is not None:
        sent.append((b"authorization", f"Bearer {token}".encode()))
    sent += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    scope = {"type": "websocket", "path": raw_path, "query_string": query.encode(), "headers": sent, "subprotocols": []}
    communicator = ApplicationCommunicator(application, scope)
    try:
        await communicator.send_input({"type": "websocket.connect"})
        accepted = await communicator.receive_output(5)
        assert accepted["type"] == "websocket.accept", accepted
        frame = json.loads((await communicator.receive_output(5))["text"])
        if frame["type"] == "error":
            closed = await communicator.receive_output(5)
            assert closed["type"] == "websocket.close", closed
            await communicator.send_input({"type": "websocket.disconnect", "code": closed["code"]})
            await communicator.wait(5)
            return Handshake(frame=frame, close_code=closed["code"])
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(5)
        return Handshake(frame=frame, close_code=None)
    finally:
        # The consumer's reads ran in asgiref's shared worker thread: close its connection
        # there, or the test database cannot be dropped at the end.
        await database_sync_to_async(connections.close_all)()
