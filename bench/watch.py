"""Live-watch fan-out: delivery latency and exactly-once delivery under a steady writer.

One run starts everything it needs and stops it again: a fresh PostgreSQL
database (``kvsite_watchbench`` by default, dropped and recreated), two kvsite
server processes (uvicorn) on the Redis pub/sub channel layer, and client
processes holding the watchers. Half the watchers watch the whole bucket, half
``a.*``, which matches every other write. A writer then PUTs through both
server processes, alternating, at a fixed rate; for each step it reports

* delivery latency from commit to receipt, p50/p99/max over every frame of
  every watcher (commit time: the entry's ``created_at``, taken inside the write
  transaction, so the figure slightly overstates the true commit-to-receipt);
* whether every watcher received every matching write exactly once, in
  revision order (missing, duplicated and out-of-order counts).

The first step runs at ``--rate`` for ``--duration`` seconds (the issue's 20
writes/s for 30 s); later steps multiply the rate by ``--step-factor`` and run
``--step-duration`` seconds each, until p99 exceeds ``--p99-target`` ms, a frame
is lost or duplicated, or the writer cannot keep 90% of the rate. The highest
rate that passed all three is reported. Each step also prints the CPU time the
servers and the watcher clients used per frame delivered: on a shared machine
the steadier figure. The watchers use a bare RFC 6455 reader by default
(``--client raw``, ~10 us of CPU per frame against ~45-60 us for the websockets
library's client, ``--client websockets``), so the load generator takes less of
the CPU the servers need.

Needs PostgreSQL with ``CREATE DATABASE`` rights and Redis::

    .venv/bin/python bench/watch.py
    .venv/bin/python bench/watch.py --watchers 1000 --rate 20 --duration 30 --step-duration 15
"""

import argparse
import asyncio
import base64
import itertools
import json
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUCKET = "watchbench"
FILTER = "a.*"


# --- Environment: database, servers ---------------------------------------------------------


def recreate_database(*, admin_url: str, name: str) -> str:
    """Drop and create ``name`` next to ``admin_url``'s database; return its URL."""
    import psycopg

    if name in ("test", "postgres") or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to recreate database {name!r}")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def server_env(*, database_url: str, redis_url: str) -> dict[str, str]:
    """A production-like environment: debug off, real secrets, Redis layer with a prefix of our own."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "KV_"))},
        "DJANGO_SETTINGS_MODULE": "kvsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_LOG_LEVEL": "WARNING",
        "KV_MASTER_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": database_url,
        # Under ASGI each request runs in a thread of its own: persistent connections
        # would pile up one per request thread until PostgreSQL refuses clients.
        "DJANGO_CONN_MAX_AGE": "0",
        "REDIS_URL": redis_url,
        "KV_CHANNEL_LAYER_PREFIX": f"watchbench-{os.getpid()}.",
        "PYTHONWARNINGS": "ignore",
    }


def prepare(env: dict[str, str]) -> str:
    """Migrate, create the bucket and an admin API key; return the token."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    script = (
        "import django; django.setup()\n"
        "from buckets.core import store\n"
        "from kvsite.access.apikeys import apikey_create\n"
        f"store.bucket_create(name='APP_{BUCKET}')\n"
        "print(apikey_create(name='watchbench', role='admin').token)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, capture_output=True)
    return result.stdout.decode().strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def servers(env: dict[str, str], count: int, pids: list[int]) -> Iterator[list[str]]:
    processes, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "kvsite.asgi:application", "--host", "127.0.0.1"]
            command += ["--port", str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
            processes.append(subprocess.Popen(command, cwd=REPO, env=env))
            pids.append(processes[-1].pid)
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_healthy(url)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy")


# --- Watcher processes ----------------------------------------------------------------------


@dataclass
class WatcherSpec:
    server: str
    pattern: str | None


@dataclass
class Received:
    """Per watcher: revisions in arrival order and their latencies (seconds)."""

    revisions: list[list[int]] = field(default_factory=list)
    latencies: list[list[float]] = field(default_factory=list)


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _watch_websockets(spec: WatcherSpec, token: str, inbox: list, ready: asyncio.Event, failures: list) -> None:
    """A watcher on the websockets library (``--client websockets``): ~45 us of client CPU per frame."""
    from websockets.asyncio.client import connect

    try:
        async with connect(
            _watch_url(spec).replace("http://", "ws://"),
            origin=spec.server,
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,
            open_timeout=60,
            max_queue=None,
        ) as ws:
            ready.set()
            async for message in ws:
                received_at = time.time()
                if message.startswith('{"type": "kv_update"'):
                    # Parsing waits for collection, so the receive loop stays cheap.
                    inbox.append((received_at, message))
                elif message.startswith('{"type": "ping"'):
                    await ws.send('{"type": "pong"}')
                else:
                    failures.append(message)
    except Exception as error:
        failures.append(repr(error))
        ready.set()


def _watch_url(spec: WatcherSpec) -> str:
    query = f"?key={spec.pattern}" if spec.pattern else ""
    return spec.server + f"/api/v1/kv/buckets/{BUCKET}/watch{query}"


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.3); payloads here are short."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


class _RawWatchProtocol(asyncio.Protocol):
    """RFC 6455 straight from the socket: the handshake, then frames parsed in ``data_received``.

    The load generator shares the machine with the servers, and the websockets
    library costs more CPU per frame than the server does now, which slowed the
    servers it was measuring. This parses each read in place (server frames are
    unmasked and unfragmented here), answers pings, and keeps the arrival time of
    the read that completed each frame; no task wakes up per frame.
    """

    def __init__(self, request: bytes, inbox: list, ready: asyncio.Event, failures: list) -> None:
        self.request, self.inbox, self.ready, self.failures = request, inbox, ready, failures
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.is_set():
            self.failures.append(f"connection lost during the handshake: {exc!r}")
            self.ready.set()

    def data_received(self, data: bytes) -> None:
        received_at = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.failures.append(bytes(buffer[: buffer.find(b"\r\n")]).decode())
                self.transport.close()
                self.ready.set()
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.ready.set()
        start = 0
        while len(buffer) - start >= 2:
            opcode, length = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
            offset = start + 2
            if length == 126:
                length, offset = int.from_bytes(buffer[offset : offset + 2]), offset + 2
            elif length == 127:
                length, offset = int.from_bytes(buffer[offset : offset + 8]), offset + 8
            if len(buffer) < offset + length:
                break
            payload = bytes(buffer[offset : offset + length])
            start = offset + length
            if opcode == 0x1:
                if payload.startswith(b'{"type": "kv_update"'):
                    self.inbox.append((received_at, payload))
                elif payload.startswith(b'{"type": "ping"'):
                    self.transport.write(_client_frame(0x1, b'{"type": "pong"}'))
                else:
                    self.failures.append(payload.decode())
            elif opcode == 0x9:
                self.transport.write(_client_frame(0xA, payload))
            elif opcode == 0x8:
                reason = payload[2:].decode(errors="replace")
                self.failures.append(f"closed by the server: {int.from_bytes(payload[:2])} {reason}")
                self.transport.close()
                return
        del buffer[:start]


async def _watch_raw(spec: WatcherSpec, token: str, inbox: list, ready: asyncio.Event, failures: list) -> None:
    """A watcher on a bare socket (``--client raw``, the default): see ``_RawWatchProtocol``."""
    host, port = spec.server.removeprefix("http://").split(":")
    path = _watch_url(spec).removeprefix(spec.server)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {spec.server}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: _RawWatchProtocol(request, inbox, ready, failures), host, int(port)), 60
        )
    except Exception as error:
        failures.append(repr(error))
        ready.set()
        return
    try:
        await asyncio.Event().wait()  # until cancelled by "stop"
    finally:
        transport.close()


def watcher_process(specs: list[WatcherSpec], token: str, control: Connection, client: str = "raw") -> None:
    """Hold ``specs`` watchers; answer "collect" with what each received since the last collect."""

    async def main() -> None:
        watch = _watch_raw if client == "raw" else _watch_websockets
        inboxes: list[list] = [[] for _ in specs]
        failures: list[str] = []
        events = [asyncio.Event() for _ in specs]
        tasks = []
        # Connect in small waves: a thousand simultaneous handshakes only measure the accept queue.
        for index, spec in enumerate(specs):
            tasks.append(asyncio.create_task(watch(spec, token, inboxes[index], events[index], failures)))
            if index % 50 == 49:
                await asyncio.gather(*(event.wait() for event in events[: index + 1]))
        await asyncio.gather(*(event.wait() for event in events))
        control.send(("ready", failures))
        lasts = [0] * len(specs)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, control.recv)
            if command == "last":
                for index, inbox in enumerate(inboxes):
                    if inbox:
                        lasts[index] = json.loads(inbox[-1][1])["revision"]
                control.send((lasts, list(failures)))
            elif command == "collect":
                received = Received()
                for inbox in inboxes:
                    frames = [(at, json.loads(message)) for at, message in inbox]
                    inbox.clear()
                    received.revisions.append([frame["revision"] for _, frame in frames])
                    received.latencies.append([at - _parse_time(frame["created_at"]) for at, frame in frames])
                control.send(received)
            elif command == "stop":
                for task in tasks:
                    task.cancel()
                return

    try:
        import uvloop  # uvicorn[standard] brings it; the servers run on it too
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


# --- Writer and analysis ----------------------------------------------------------------------


@dataclass
class Write:
    revision: int
    key: str


async def write_at_rate(
    *, urls: list[str], token: str, rate: float, duration: float, step: int
) -> tuple[list[Write], float]:
    """PUT at ``rate`` writes/s for ``duration`` s, alternating servers; returns writes and achieved rate.

    Every write goes to a key of its own, so no revision is ever superseded: a
    watcher that misses one has lost it, which is what the exactly-once check counts.
    """
    import httpx

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) for url in urls]
    writes: list[Write] = []
    errors = 0
    # Bounded in flight: writes to one bucket queue on its row lock, each holding a connection.
    in_flight = asyncio.Semaphore(16)

    async def put(index: int) -> None:
        nonlocal errors
        key = f"{'a' if index % 2 == 0 else 'b'}.s{step}-{index}"
        async with in_flight:
            response = await clients[index % len(clients)].put(
                f"/api/v1/kv/buckets/{BUCKET}/keys/{key}", content=os.urandom(48)
            )
        if response.status_code == 200:
            writes.append(Write(revision=response.json()["revision"], key=key))
        else:
            errors += 1

    total = int(rate * duration)
    started = time.monotonic()
    tasks = []
    for index in range(total):
        # Open loop: each write starts on schedule, whether or not earlier ones finished.
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(put(index)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for client in clients:
        await client.aclose()
    if errors:
        print(f"  writer: {errors} failed writes")
    return sorted(writes, key=lambda write: write.revision), len(writes) / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class StepResult:
    rate: float
    achieved: float
    frames: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int
    duplicated: int
    out_of_order: int

    @property
    def exact(self) -> bool:
        return not (self.missing or self.duplicated or self.out_of_order)

    def within(self, p99_target_ms: float) -> bool:
        """Exact delivery, p99 within target, and the writer kept (90% of) the rate: a rate the system sustains."""
        return self.exact and self.p99_ms <= p99_target_ms and self.achieved >= self.rate * 0.9


def analyse(*, rate: float, achieved: float, writes: list[Write], specs: list[WatcherSpec], received: Received):
    everything = [write.revision for write in writes]
    filtered = [write.revision for write in writes if write.key.startswith("a.")]
    latencies: list[float] = []
    missing = duplicated = out_of_order = 0
    for spec, got, lat in zip(specs, received.revisions, received.latencies, strict=True):
        expected = filtered if spec.pattern else everything
        missing += len(set(expected) - set(got))
        duplicated += len(got) - len(set(got))
        out_of_order += sum(1 for before, after in itertools.pairwise(got) if after <= before)
        latencies.extend(lat)
    return StepResult(
        rate=rate,
        achieved=achieved,
        frames=len(latencies),
        p50_ms=statistics.median(latencies) * 1000 if latencies else float("nan"),
        p99_ms=percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
        max_ms=max(latencies) * 1000 if latencies else float("nan"),
        missing=missing,
        duplicated=duplicated,
        out_of_order=out_of_order,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--admin-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="any database of the cluster, to DROP/CREATE the bench database from",
    )
    parser.add_argument("--database", default="kvsite_watchbench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--client",
        choices=("raw", "websockets"),
        default="raw",
        help="watcher client: a bare RFC 6455 reader (cheap) or the websockets library (as earlier figures)",
    )
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--step-factor", type=float, default=2)
    parser.add_argument("--step-duration", type=float, default=15)
    parser.add_argument("--max-rate", type=float, default=1000)
    parser.add_argument("--p99-target", type=float, default=250)
    args = parser.parse_args()

    database_url = recreate_database(admin_url=args.admin_url, name=args.database)
    env = server_env(database_url=database_url, redis_url=args.redis_url)
    token = prepare(env)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    server_pids: list[int] = []
    with servers(env, args.servers, server_pids) as urls:
        specs = [
            WatcherSpec(server=urls[index % len(urls)], pattern=FILTER if (index // len(urls)) % 2 else None)
            for index in range(args.watchers)
        ]
        shares = [specs[index :: args.client_processes] for index in range(args.client_processes)]
        context = multiprocessing.get_context("spawn")
        pipes, processes = [], []
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(target=watcher_process, args=(share, token, theirs, args.client), daemon=True)
            process.start()
            pipes.append(ours)
            processes.append(process)
        started = time.monotonic()
        failures = [failure for pipe in pipes for failure in pipe.recv()[1]]
        print(f"{args.watchers} watchers on {len(urls)} servers connected in {time.monotonic() - started:.1f} s")
        if failures:
            raise SystemExit(f"{len(failures)} watchers failed to connect, e.g. {failures[0]}")
        ordered_specs = [spec for share in shares for spec in share]

        results: list[StepResult] = []
        rate, duration = args.rate, args.duration
        while rate <= args.max_rate:
            measured = server_pids + [process.pid for process in processes]
            cpu_before = [cpu_seconds(pid) for pid in measured]
            writes, achieved = asyncio.run(
                write_at_rate(urls=urls, token=token, rate=rate, duration=duration, step=len(results))
            )
            drain_until(pipes, ordered_specs, writes)
            cpu_used = [cpu_seconds(pid) - before for pid, before in zip(measured, cpu_before, strict=True)]
            received = Received()
            for pipe in pipes:
                pipe.send("collect")
                part = pipe.recv()
                received.revisions += part.revisions
                received.latencies += part.latencies
            result = analyse(rate=rate, achieved=achieved, writes=writes, specs=ordered_specs, received=received)
            results.append(result)
            print(
                f"rate {rate:6.0f}/s (achieved {achieved:6.1f}) for {duration:.0f}s: frames {result.frames:8d}  "
                f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  max {result.max_ms:7.1f} ms  "
                f"missing {result.missing} duplicated {result.duplicated} out-of-order {result.out_of_order}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            server_cpu = sum(cpu_used[: len(server_pids)])
            client_cpu = sum(cpu_used[len(server_pids) :])
            print(
                f"  CPU: servers {server_cpu:.1f} s ({1e6 * server_cpu / max(result.frames, 1):.0f} us per frame "
                f"delivered, all work included), watcher clients {client_cpu:.1f} s "
                f"({1e6 * client_cpu / max(result.frames, 1):.0f} us per frame)",
                flush=True,
            )
            if not result.within(args.p99_target):
                break
            rate, duration = rate * args.step_factor, args.step_duration
        for pipe in pipes:
            pipe.send("stop")
        for process in processes:
            process.join(timeout=10)

    within = [result for result in results if result.within(args.p99_target)]
    best = max((result.rate for result in within), default=None)
    target = f"p99 <= {args.p99_target:.0f} ms, exact delivery and the rate kept"
    print(f"highest rate with {target}: {best or 'none'} writes/s")
    print(f"exactly once at every rate run: {all(result.exact for result in results)}")


def drain_until(pipes: list[Connection], specs: list[WatcherSpec], writes: list[Write], timeout: float = 180) -> None:
    """Wait until every watcher has the last write it should get (or ``timeout``, or a watcher is closed)."""
    if not writes:
        return
    last_all = writes[-1].revision
    last_filtered = max((write.revision for write in writes if write.key.startswith("a.")), default=0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lasts, failures = [], []
        for pipe in pipes:
            pipe.send("last")
            part_lasts, part_failures = pipe.recv()
            lasts += part_lasts
            failures += part_failures
        if all(last >= (last_filtered if spec.pattern else last_all) for spec, last in zip(specs, lasts, strict=True)):
            return
        if failures:
            print(f"  drain: {len(failures)} watchers were closed, e.g. {failures[0]}")
            return
        time.sleep(0.5)
    print("  drain: some watchers did not catch up within the timeout")


if __name__ == "__main__":
    main()
