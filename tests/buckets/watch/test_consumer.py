"""buckets.watch.consumer without a server: a watcher's outbox, and a refusal the server cannot send as a denial."""

import asyncio
import json

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.db import connections

from buckets.core.fanout import Change
from buckets.kv.consumers import KeyWatchConsumer
from buckets.watch.options import key_matcher, watch_options

pytestmark = pytest.mark.django_db(transaction=True)


def change(revision: int, key: str) -> Change:
    return Change({"type": "kv_update", "key": key, "revision": revision})


def test_a_waiting_watcher_skips_non_matching_changes_without_queueing_them(settings) -> None:
    settings.KV_WATCH_QUEUE_SIZE = 2

    async def scenario() -> tuple[KeyWatchConsumer, list[tuple[int, dict]]]:
        consumer = KeyWatchConsumer()
        consumer.options = watch_options(query={"key": ["a.*"]})
        consumer.matches = key_matcher(consumer.options.pattern)
        consumer.reached = 5
        consumer.parked = asyncio.get_running_loop().create_future()
        closes: list[tuple[int, dict]] = []
        consumer._shutdown = lambda code, frame: closes.append((code, frame))

        consumer.offer(change(4, "a.old"))  # already sent by a replay
        consumer.offer(change(6, "b.x"))  # nothing queued or in flight: the client has everything to 6
        assert (consumer.reached, list(consumer.outbox)) == (6, [])
        consumer.offer(change(7, "a.x"))  # wakes the sending task
        assert consumer.parked is None
        consumer.offer(change(8, "b.y"))  # queued now: 7 is not sent yet, so reached must not pass it
        assert consumer.reached == 6
        consumer.offer(change(9, "a.y"))  # a third queued change overflows the outbox of 2
        return consumer, closes

    consumer, closes = asyncio.run(scenario())

    assert [item.revision for item in consumer.outbox] == [7, 8]
    assert [code for code, _ in closes] == [4008]


# --- Refusal on a server without the HTTP-response extension ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_without_the_denial_extension_a_refusal_is_an_error_frame_and_a_44xx_close(issue_token, make_bucket) -> None:
    from kvsite.asgi import application

    make_bucket("app")
    token = issue_token("admin")

    async def attempt(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[dict, int]:
        # Channels' WebsocketCommunicator needs daphne; this is the same drive by hand, and
        # its scope, like daphne's, offers no "websocket.http.response" extension.
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "websocket",
            "path": raw_path,
            "query_string": query.encode(),
            # A browser's handshake on the site's own origin (scheme, host and port, as a server passes them).
            "headers": [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), *headers],
            "subprotocols": [],
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "websocket.connect"})
        accepted = await communicator.receive_output(5)
        frame = await communicator.receive_output(5)
        closed = await communicator.receive_output(5)
        await communicator.send_input({"type": "websocket.disconnect", "code": closed["code"]})
        await communicator.wait(5)
        assert accepted["type"] == "websocket.accept"
        assert closed["type"] == "websocket.close"
        return json.loads(frame["text"]), closed["code"]

    async def scenario() -> list[tuple[dict, int]]:
        bearer = [(b"authorization", f"Bearer {token}".encode())]
        try:
            return [
                await attempt("/api/v1/kv/buckets/app/watch", []),
                await attempt("/api/v1/kv/buckets/nope/watch", bearer),
                await attempt("/api/v1/kv/buckets/app/watch?since=x", bearer),
            ]
        finally:
            # The consumer's reads ran in asgiref's shared worker thread: close its
            # connection there, or the test database cannot be dropped at the end.
            await database_sync_to_async(connections.close_all)()

    unauthenticated, not_found, invalid = asyncio.run(scenario())

    assert unauthenticated[0]["type"] == "error"
    assert unauthenticated[0]["code"] == "unauthenticated"
    assert unauthenticated[1] == 4401
    assert not_found == ({"type": "error", "code": "not_found", "message": "bucket 'nope' not found"}, 4404)
    assert invalid[0]["code"] == "invalid_argument"
    assert invalid[1] == 4400
