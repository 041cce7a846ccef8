"""Config watch end to end: config_update frames for one document, in order, through a real server."""

import asyncio
import json

import httpx
import pytest

from buckets.configs import services as configs
from kvsite.access.audit import audit_actor_system
from tests.live_server import asgi_server_factory, ws_connect  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SYSTEM = audit_actor_system(name="tests")


async def frames_until(ws, count: int) -> list[dict]:
    received: list[dict] = []
    while len(received) < count:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if frame["type"] == "ping":
            await ws.send('{"type": "pong"}')
        else:
            received.append(frame)
    return received


def test_a_document_watch_sends_its_changes_as_config_updates(asgi_server_factory, issue_token) -> None:  # noqa: F811
    server = asgi_server_factory()
    token = issue_token("reader")
    writer = {"Authorization": f"Bearer {issue_token('writer')}", "Content-Type": "application/json"}
    configs.config_set(environment="default", name="flags", data={"beta": False}, actor=SYSTEM)
    configs.config_set(environment="staging", name="flags", data={"beta": True}, actor=SYSTEM)

    async def scenario() -> list[dict]:
        async with (
            ws_connect(server, "/api/v1/config/flags/watch?include=current", token=token) as ws,
            httpx.AsyncClient(base_url=server.http_url, headers=writer) as http,
        ):
            initial = await frames_until(ws, 2)
            await http.patch("/api/v1/config/flags", content=b'{"beta": true}')
            await http.post("/api/v1/config/other", content=b'{"x": 1}')
            await http.post(
                "/api/v1/config/flags", content=b'{"beta": 0}', headers={"X-Ironflow-Environment-ID": "staging"}
            )
            await http.delete("/api/v1/config/flags")
            return initial + await frames_until(ws, 2)

    frames = asyncio.run(scenario())

    assert [(f["type"], f.get("data"), f["revision"]) for f in frames] == [
        ("config_update", {"beta": False}, 1),
        ("ready", None, 1),
        ("config_update", {"beta": True}, 2),
        ("config_update", None, 4),
    ]
    assert frames[2]["name"] == "flags" and frames[2]["updatedAt"].endswith("Z")


def test_config_watch_refusals(asgi_server_factory, issue_token) -> None:  # noqa: F811
    server = asgi_server_factory()
    configs.config_set(environment="default", name="flags", data={}, actor=SYSTEM)

    async def close_code(path: str, token: str | None) -> int:
        try:
            async with ws_connect(server, path, token=token) as ws:
                await asyncio.wait_for(ws.recv(), 10)
        except Exception as error:  # denied handshakes raise InvalidStatus
            return getattr(getattr(error, "response", None), "status_code", 0)
        return 0

    assert asyncio.run(close_code("/api/v1/config/flags/watch", None)) == 401
    assert asyncio.run(close_code("/api/v1/config/flags/watch?environment=nowhere", issue_token("reader"))) == 404
    assert asyncio.run(close_code("/api/v1/config/bad..name/watch", issue_token("reader"))) == 400
