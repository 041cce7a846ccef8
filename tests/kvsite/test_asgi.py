"""kvsite.asgi: the WebSocket middleware stack."""

import asyncio

import pytest
from django.db import connections


@pytest.mark.django_db(transaction=True)
def test_the_websocket_stack_puts_session_and_user_in_the_scope_and_passes_send_through() -> None:
    from channels.db import database_sync_to_async as in_thread

    from kvsite.asgi import websocket_auth_stack

    seen: dict = {}

    async def inner(scope, receive, send) -> None:
        seen["send"] = send
        seen["session"] = scope["session"]
        seen["user"] = await in_thread(lambda: scope["user"].is_authenticated)()

    async def send(message: dict) -> None:
        pass

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/", "headers": [(b"cookie", b"sessionid=unknown")]}

    async def scenario() -> None:
        try:
            await websocket_auth_stack(inner)(scope, receive, send)
        finally:
            await in_thread(connections.close_all)()

    asyncio.run(scenario())

    # Frames go straight to the server's send: no session wrapper per message.
    assert seen["send"] is send
    assert seen["session"] is not None
    assert seen["user"] is False
