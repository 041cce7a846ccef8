"""The watch's parts without a server: revision ordering, options, replay reads, tickets, and the fallback refusal."""

import asyncio
import json
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.db import connections
from rest_framework.test import APIClient

from buckets.core import replay, store
from buckets.core.fanout import RevisionOrder
from buckets.core.names import app_bucket
from buckets.core.wildcards import compile_pattern
from buckets.watch import watch_options
from kvsite.access.permissions import ENTRY_READ, ROLE_PERMISSIONS, Principal
from kvsite.access.tickets import ticket_create, ticket_redeem
from kvsite.http.errors import InvalidArgument, Unauthenticated


def event(revision: int, key: str = "k") -> dict:
    return {"type": "kv_update", "key": key, "revision": revision}


def revisions(events: list[dict]) -> list[int]:
    return [item["revision"] for item in events]


# --- RevisionOrder --------------------------------------------------------------------------


def test_events_in_order_pass_straight_through() -> None:
    order = RevisionOrder(last=4)

    assert revisions(order.offer(event(5))) == [5]
    assert revisions(order.offer(event(6))) == [6]
    assert order.waiting == 0


def test_an_early_event_waits_for_the_one_before_it() -> None:
    order = RevisionOrder(last=4)

    assert order.offer(event(6)) == []
    assert order.waiting == 1
    assert revisions(order.offer(event(5))) == [5, 6]
    assert order.last == 6
    assert order.waiting == 0


def test_duplicates_and_old_revisions_vanish() -> None:
    order = RevisionOrder(last=4)
    order.offer(event(5))

    assert order.offer(event(5)) == []
    assert order.offer(event(3)) == []
    order.offer(event(7))
    assert order.offer(event(7)) == []
    assert order.waiting == 1


def test_settle_fills_the_gap_from_the_database_and_skips_what_is_gone() -> None:
    # Given 6 and 9 arrived, 5, 7 and 8 did not; the database still keeps 5 and 8 (7 was trimmed).
    order = RevisionOrder(last=4)
    order.offer(event(6))
    order.offer(event(9))

    # When the gap is read through revision 9
    ready = order.settle(events=[event(5), event(6), event(8), event(9)], through=9)

    # Then everything kept comes out once, in order, and 7 is skipped
    assert revisions(ready) == [5, 6, 8, 9]
    assert order.last == 9
    assert order.waiting == 0


def test_settle_keeps_held_back_events_the_database_no_longer_has_and_releases_later_ones() -> None:
    order = RevisionOrder(last=1)
    order.offer(event(3))  # trimmed by the time the database is read
    order.offer(event(6))
    order.offer(event(7))

    ready = order.settle(events=[event(2), event(5)], through=5)

    assert revisions(ready) == [2, 3, 5, 6, 7]
    assert order.last == 7


def test_settle_with_a_pattern_filtered_read_still_moves_past_everything() -> None:
    order = RevisionOrder(last=0)
    order.offer(event(3, "other"))

    # The database read only returns matching keys: nothing here.
    ready = order.settle(events=[], through=4)

    assert revisions(ready) == [3]
    assert order.last == 4
    assert order.offer(event(4)) == []


# --- Options --------------------------------------------------------------------------------


def test_options_parse_pattern_since_and_include() -> None:
    options = watch_options(query={"key": ["user.*"], "since": ["12"]})

    assert options.pattern == compile_pattern("user.*")
    assert options.since == 12
    assert not options.include_current
    assert watch_options(query={"include": ["current"], "key": [""]}).include_current
    assert watch_options(query={}).pattern is None


@pytest.mark.parametrize(
    "query",
    [
        {"since": ["-1"]},
        {"since": ["1.5"]},
        {"since": ["²"]},
        {"include": ["history"]},
        {"since": ["3"], "include": ["current"]},
        {"key": ["a.>.b"]},
        {"key": ["a b"]},
    ],
)
def test_options_refuse_nonsense(query: dict) -> None:
    with pytest.raises(InvalidArgument):
        watch_options(query=query)


# --- Replay reads ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_change_events_after_returns_kept_matching_entries_in_range_oldest_first(make_bucket, clock) -> None:
    make_bucket("app", history=2)
    bucket = app_bucket("app")
    store.entry_put(bucket=bucket, key="user.1", value=b"a")  # 1
    store.entry_put(bucket=bucket, key="config", value=b"b")  # 2
    store.entry_put(bucket=bucket, key="user.1", value=b"c")  # 3
    store.entry_delete(bucket=bucket, key="user.1")  # 4, trims 1
    store.entry_put(bucket=bucket, key="user.2", value=b"d", expires_at=store.clock.now())  # 5, already expired
    store.entry_put(bucket=bucket, key="user.3", value=b"e")  # 6

    everything = replay.change_events_after(bucket=bucket, after=0, through=6)
    users = replay.change_events_after(bucket=bucket, after=0, through=6, pattern=compile_pattern("user.*"))
    window = replay.change_events_after(bucket=bucket, after=2, through=4)
    paged = replay.change_events_after(bucket=bucket, after=0, through=6, limit=2)

    assert [(e["key"], e["revision"], e["operation"]) for e in everything] == [
        ("config", 2, "put"),
        ("user.1", 3, "put"),
        ("user.1", 4, "delete"),
        ("user.3", 6, "put"),
    ]
    assert revisions(users) == [3, 4, 6]
    assert revisions(window) == [3, 4]
    assert revisions(paged) == [2, 3]
    assert everything[0] == {
        "type": "kv_update",
        "bucket": "app",
        "key": "config",
        "value": "Yg==",
        "revision": 2,
        "operation": "put",
        "created_at": everything[0]["created_at"],
    }
    assert everything[2]["value"] == ""


@pytest.mark.django_db
def test_current_events_are_live_values_up_to_a_revision(make_bucket) -> None:
    make_bucket("app")
    bucket = app_bucket("app")
    store.entry_put(bucket=bucket, key="a", value=b"1")  # 1
    store.entry_put(bucket=bucket, key="b", value=b"2")  # 2
    store.entry_put(bucket=bucket, key="a", value=b"3")  # 3
    store.entry_put(bucket=bucket, key="c", value=b"4")  # 4
    store.entry_delete(bucket=bucket, key="c")  # 5

    assert revisions(replay.current_events(bucket=bucket, through=5)) == [2, 3]
    # A key rewritten after `through` is left to the live stream.
    assert revisions(replay.current_events(bucket=bucket, through=2)) == [2]
    assert revisions(replay.current_events(bucket=bucket, through=5, pattern=compile_pattern("a"))) == [3]
    assert revisions(replay.current_events(bucket=bucket, through=5, after=2)) == [3]


@pytest.mark.django_db
def test_bucket_position_reports_last_and_oldest_kept_revision(make_bucket) -> None:
    make_bucket("app")
    bucket = app_bucket("app")
    assert replay.bucket_position(bucket=bucket) == replay.BucketPosition(last_revision=0, oldest_revision=1)
    store.entry_put(bucket=bucket, key="a", value=b"1")
    store.entry_put(bucket=bucket, key="a", value=b"2")
    store.entry_put(bucket=bucket, key="b", value=b"3")

    assert replay.bucket_position(bucket=bucket) == replay.BucketPosition(last_revision=3, oldest_revision=2)
    assert replay.bucket_position(bucket=app_bucket("missing")) is None


# --- Tickets --------------------------------------------------------------------------------

PRINCIPAL = Principal(kind="api_key", id=7, name="reader", permissions=frozenset({ENTRY_READ}), bucket_pattern="a*")


def test_a_ticket_redeems_once_as_the_principal_that_asked() -> None:
    issued = ticket_create(principal=PRINCIPAL)

    assert ticket_redeem(ticket=issued.ticket) == PRINCIPAL
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=issued.ticket)


def test_a_ticket_expires(settings) -> None:
    settings.KV_WATCH_TICKET_SECONDS = 1
    issued = ticket_create(principal=PRINCIPAL)

    time.sleep(1.1)

    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=issued.ticket)


@pytest.mark.parametrize("ticket", ["", "kvt_unknown", "kvs_an-api-key-is-no-ticket", "kvt_" + "x" * 200])
def test_unknown_tickets_are_refused(ticket: str) -> None:
    with pytest.raises(Unauthenticated):
        ticket_redeem(ticket=ticket)


@pytest.mark.django_db
def test_ticket_endpoint_issues_for_the_caller_and_needs_credentials(client_for) -> None:
    response = client_for("reader", buckets="a*").post("/api/v1/ws-ticket")

    assert response.status_code == 201
    assert response.json()["expires_in"] == 30
    principal = ticket_redeem(ticket=response.json()["ticket"])
    assert principal.bucket_pattern == "a*"
    assert principal.permissions == ROLE_PERMISSIONS["reader"]
    anonymous = APIClient().post("/api/v1/ws-ticket")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthenticated"


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
            "headers": [(b"origin", b"http://127.0.0.1"), *headers],
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


# --- The WebSocket middleware stack -----------------------------------------------------------------


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
