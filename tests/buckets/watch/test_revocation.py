"""Open watches and tickets follow their principal, end to end, on each serving path with WebSockets.

A watch opened with an API key, a staff session or a ticket is closed with 4401 (after an
``unauthenticated`` error frame) within ``KV_API_KEY_CACHE_SECONDS`` plus one heartbeat once
its key is revoked or expires, or its user is deleted, deactivated, loses staff, is signed out
or changes password; a ticket is refused (401) if its principal no longer stands when
redeemed. The servers run with both at 1 s, so the bound is 2 s; the delays are measured
from the change's commit in this process to the close frame's arrival, and printed.
"""

import asyncio
import contextlib
import json
import secrets
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access import apikeys
from kvsite.models import ApiKey
from tests.live_server import AsgiServer, redis_available, server_redis_url, start_asgi_server, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CACHE_SECONDS, HEARTBEAT_SECONDS = 1.0, 1.0
BOUND = CACHE_SECONDS + HEARTBEAT_SECONDS
# Scheduling on a loaded two-core machine: the close must still come well before another heartbeat would.
MARGIN = 0.75
# The servers' and the session cookies': a session is only valid under the key that signed it.
SECRET_KEY = secrets.token_urlsafe(48)
FOLLOWING = {
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "KV_API_KEY_CACHE_SECONDS": str(CACHE_SECONDS),
    "KV_WATCH_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    # Generous: a loaded machine must not make an answering client look silent.
    "KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS": "10",
}
# A session's POST needs a CSRF token: this one, as cookie and header.
CSRF = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


@pytest.fixture(scope="module", params=["development", "production"])
def server(request, django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    serving = request.param
    if serving != "development" and not redis_available(server_redis_url()):
        pytest.skip(f"the {serving} path needs Redis at {server_redis_url()}")
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        served = start_asgi_server(serving=serving, env=FOLLOWING)
        stack.callback(served.stop)
        yield served


@dataclass(frozen=True)
class Site:
    server: AsgiServer
    bucket: str  # a bucket of the test's own: no feed of an earlier test's bucket of that name is still open
    writer: str  # a key that writes to it and is never revoked

    @property
    def watch_path(self) -> str:
        return f"/api/v1/kv/buckets/{self.bucket}/watch"


@pytest.fixture
def site(server) -> Site:
    bucket = f"app-{secrets.token_hex(4)}"
    store.bucket_create(name=app_bucket(bucket))
    return Site(server=server, bucket=bucket, writer=apikeys.apikey_create(name="writer", role="writer").token)


def staff_session(username: str) -> Client:
    """A client signed in as a new staff user, with a session the servers accept."""
    client = Client()
    with override_settings(SECRET_KEY=SECRET_KEY):
        client.force_login(get_user_model().objects.create_user(username, password="x", is_staff=True))
    return client


def cookie(client: Client, *, csrf: str = "") -> dict[str, str]:
    """The session cookie of ``client`` (and a CSRF token, for a POST)."""
    if not csrf:
        return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}", "X-CSRFToken": csrf}


def ticket_for(server: AsgiServer, headers: dict[str, str]) -> str:
    response = httpx.post(server.http_url + "/api/v1/ws-ticket", headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def committed(change: Callable[[], object]) -> Callable[[], float]:
    """``change`` for a worker thread, on a connection of its own; returns the monotonic time it was committed."""

    def run() -> float:
        try:
            change()
            return time.monotonic()
        finally:
            connection.close()

    return run


class Watch:
    """An open watch that answers pings, keeps its frames and notes when it was closed."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.closed_at: float | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                frame = json.loads(message)
                if frame["type"] == "ping":
                    # A ping can be the frame just before a close: the frames after it are still read.
                    with contextlib.suppress(ConnectionClosed):
                        await self.ws.send(json.dumps({"type": "pong"}))
                else:
                    self.frames.append(frame)
        self.closed_at = time.monotonic()

    async def sees(self, key: str) -> None:
        """Wait until a change of ``key`` arrives."""
        deadline = time.monotonic() + 10
        while not any(frame.get("key") == key for frame in self.frames):
            assert time.monotonic() < deadline, f"{key} never arrived: {self.frames}"
            await asyncio.sleep(0.02)

    async def closed_since(self, start: float, *, within: float) -> tuple[int | None, dict, float]:
        """The close code, the last frame and the delay from ``start``; fails if still open ``within`` after it."""
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), start + within - time.monotonic())
        except TimeoutError:
            pytest.fail(f"the watch was still open {within:.2f} s after its principal stopped standing")
        assert self.closed_at is not None
        return self.ws.close_code, self.frames[-1], self.closed_at - start


async def open_watch(site: Site, *, token: str | None = None, headers: dict[str, str] | None = None) -> Watch:
    return Watch(await ws_connect(site.server, site.watch_path, token=token, headers=headers))


async def open_watch_with_ticket(site: Site, headers: dict[str, str]) -> Watch:
    ticket = await asyncio.to_thread(ticket_for, site.server, headers)
    return Watch(await ws_connect(site.server, f"{site.watch_path}?ticket={ticket}"))


@contextlib.asynccontextmanager
async def writing(site: Site) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """Put keys of the site's bucket through the server's API, as the writer."""
    headers = {"Authorization": f"Bearer {site.writer}"}
    async with httpx.AsyncClient(base_url=site.server.http_url, headers=headers) as client:

        async def put(key: str) -> None:
            response = await client.put(f"/api/v1/kv/buckets/{site.bucket}/keys/{key}", content=b"v")
            assert response.status_code == 200, response.text

        yield put


def handshake_status(server: AsgiServer, path: str) -> int:
    """The status of a handshake (101: the watch opened)."""

    async def attempt() -> int:
        try:
            async with ws_connect(server, path):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


def report(site: Site, delays: dict[str, float]) -> None:
    measured = ", ".join(f"{why} {delay:.2f} s" for why, delay in delays.items())
    print(f"\n[{site.server.serving}] close delays: {measured}")


# --- API keys ---------------------------------------------------------------------------------


def test_a_revoked_key_closes_its_watches_with_4401_within_the_bound(site: Site) -> None:
    issued = apikeys.apikey_create(name="revoked", role="reader")
    bystander = apikeys.apikey_create(name="bystander", role="reader").token

    async def scenario() -> tuple[dict[str, tuple[int | None, dict, float]], int | None]:
        async with writing(site) as put:
            watches = {
                "bearer": await open_watch(site, token=issued.token),
                "ticket": await open_watch_with_ticket(site, {"Authorization": f"Bearer {issued.token}"}),
                "another key": await open_watch(site, token=bystander),
            }
            await put("before")
            for watch in watches.values():
                await watch.sees("before")
            # The key is revoked in this process, not in the server's: its cache is not cleared.
            revoked = await asyncio.to_thread(committed(lambda: apikeys.apikey_revoke(api_key_id=issued.api_key.pk)))
            closes = {
                how: await watches[how].closed_since(revoked, within=BOUND + MARGIN) for how in ("bearer", "ticket")
            }
            await put("after")
            await watches["another key"].sees("after")
            await watches["another key"].ws.close()
            return closes, watches["another key"].ws.close_code

    closes, bystander_code = asyncio.run(scenario())

    report(site, {f"revoked key ({how})": delay for how, (_, _, delay) in closes.items()})
    for code, last_frame, delay in closes.values():
        assert code == 4401
        assert last_frame == {"type": "error", "code": "unauthenticated", "message": "the API key was revoked"}
        assert delay <= BOUND + MARGIN
    assert bystander_code == 1000  # another key's watch went on until its client closed it


def test_a_key_that_expires_closes_its_watch_when_it_expires(site: Site) -> None:
    expires_at = timezone.now() + timedelta(seconds=2)
    issued = apikeys.apikey_create(name="expiring", role="reader", expires_at=expires_at)

    async def scenario() -> tuple[int | None, dict, float]:
        async with writing(site) as put:
            watch = await open_watch(site, token=issued.token)
            await put("before")
            await watch.sees("before")
            expiry = time.monotonic() + (expires_at - timezone.now()).total_seconds()
            return await watch.closed_since(expiry, within=BOUND + MARGIN)

    code, last_frame, delay = asyncio.run(scenario())

    report(site, {"expired key": delay})
    assert code == 4401
    assert last_frame == {"type": "error", "code": "unauthenticated", "message": "the API key expired"}
    # An expiry is known from the key's row: no cache delay, one heartbeat at most, and never early.
    assert -0.05 <= delay <= HEARTBEAT_SECONDS + MARGIN


def test_a_key_whose_scopes_no_longer_reach_the_bucket_is_closed_with_4403(site: Site) -> None:
    issued = apikeys.apikey_create(name="narrowed", role="reader", scopes=["bucket:app*"])

    async def scenario() -> tuple[int | None, dict, float]:
        async with writing(site) as put:
            watch = await open_watch(site, token=issued.token)
            await put("before")
            await watch.sees("before")
            # No service edits a key's scopes yet: the row is changed as one would change it.
            narrowed = await asyncio.to_thread(
                committed(lambda: ApiKey.objects.filter(pk=issued.api_key.pk).update(scopes=["bucket:other-*"]))
            )
            return await watch.closed_since(narrowed, within=BOUND + MARGIN)

    code, last_frame, delay = asyncio.run(scenario())

    report(site, {"scopes narrowed": delay})
    assert code == 4403
    assert last_frame == {
        "type": "error",
        "code": "permission_denied",
        "message": f"this key may not access bucket:{site.bucket}",
    }


# --- Staff sessions -------------------------------------------------------------------------------


def _set(username: str, **fields: object) -> None:
    get_user_model().objects.filter(username=username).update(**fields)


def _change_password(username: str) -> None:
    user = get_user_model().objects.get(username=username)
    user.set_password("changed")
    user.save()


# How a staff user stops standing: each is applied to a user of its own, whose session watches.
USER_CHANGES: dict[str, Callable[[str, Client], object]] = {
    "deleted": lambda username, _: get_user_model().objects.filter(username=username).delete(),
    "no longer staff": lambda username, _: _set(username, is_staff=False),
    "deactivated": lambda username, _: _set(username, is_active=False),
    "signed out": lambda _, session: session.logout(),
    "password changed": lambda username, _: _change_password(username),
}


def test_a_session_watch_closes_once_its_user_or_session_no_longer_stands(site: Site) -> None:
    sessions = {why: (f"staff-{n}", staff_session(f"staff-{n}")) for n, why in enumerate([*USER_CHANGES, "unchanged"])}

    def change_each() -> dict[str, float]:
        """Apply each change in turn, in a worker thread (each commits on its own); when each was committed."""
        changed: dict[str, float] = {}
        try:
            with override_settings(SECRET_KEY=SECRET_KEY):
                for why, change in USER_CHANGES.items():
                    change(*sessions[why])
                    changed[why] = time.monotonic()
        finally:
            connection.close()
        return changed

    async def scenario() -> dict[str, tuple[int | None, dict, float]]:
        async with writing(site) as put:
            watches = {why: await open_watch(site, headers=cookie(session)) for why, (_, session) in sessions.items()}
            # A ticket a session asked for follows that session too.
            signed_out = cookie(sessions["signed out"][1], csrf=CSRF)
            watches["signed out (its ticket's watch)"] = await open_watch_with_ticket(site, signed_out)
            await put("before")
            for watch in watches.values():
                await watch.sees("before")
            changed = await asyncio.to_thread(change_each)
            changed["signed out (its ticket's watch)"] = changed["signed out"]
            closes = {why: await watches[why].closed_since(at, within=BOUND + MARGIN) for why, at in changed.items()}
            await put("after")
            await watches["unchanged"].sees("after")
            await watches["unchanged"].ws.close()
            return closes

    closes = asyncio.run(scenario())

    report(site, {why: delay for why, (_, _, delay) in closes.items()})
    assert {why: (code, frame["code"]) for why, (code, frame, _) in closes.items()} == {
        why: (4401, "unauthenticated") for why in [*USER_CHANGES, "signed out (its ticket's watch)"]
    }
    assert all(delay <= BOUND + MARGIN for _, _, delay in closes.values())


# --- Tickets --------------------------------------------------------------------------------------


def test_a_ticket_is_refused_if_its_principal_no_longer_stands_when_redeemed(site: Site) -> None:
    revoked = apikeys.apikey_create(name="revoked", role="reader")
    destaffed, signed_out, unchanged = staff_session("destaffed"), staff_session("signed-out"), staff_session("kept")
    tickets = {
        "revoked key": ticket_for(site.server, {"Authorization": f"Bearer {revoked.token}"}),
        "no longer staff": ticket_for(site.server, cookie(destaffed, csrf=CSRF)),
        "session signed out": ticket_for(site.server, cookie(signed_out, csrf=CSRF)),
        "unchanged": ticket_for(site.server, cookie(unchanged, csrf=CSRF)),
    }

    apikeys.apikey_revoke(api_key_id=revoked.api_key.pk)
    _set("destaffed", is_staff=False)
    with override_settings(SECRET_KEY=SECRET_KEY):
        signed_out.logout()
    # A revocation in another process reaches the server's key cache within this.
    time.sleep(CACHE_SECONDS)
    statuses = {
        why: handshake_status(site.server, f"{site.watch_path}?ticket={ticket}") for why, ticket in tickets.items()
    }

    assert statuses == {"revoked key": 401, "no longer staff": 401, "session signed out": 401, "unchanged": 101}
