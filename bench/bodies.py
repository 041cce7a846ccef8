"""What refusing a bad request body costs the server: CPU per refusal, against a 50 ms target.

Starts kvsite as ``make serve`` runs it (gunicorn managing uvicorn workers, production
settings, PostgreSQL and Redis; server start-up and CPU accounting from
``bench/kv_http.py``), then sends each hostile body ``--repeat`` times on fresh
connections and divides the server's CPU time (its processes and their database
backends) by the number sent:

* bodies over a route's cap, announced by Content-Length (refused from the head alone)
  or chunked (read up to the cap, then refused);
* bodies within the cap that hold too many items (bulk calls of more than 1000 keys)
  or nest too deeply, which must be refused before anything per item is built.

It first times the body check itself in-process (``--guard-only`` stops there): the
ASGI guard and the middleware on a key GET (no body) and a 100-byte key PUT, in µs per
request, to set against the 1-3 ms of CPU a whole request costs (``bench/kv_http.py``).

::

    .venv/bin/python bench/bodies.py
    .venv/bin/python bench/bodies.py --guard-only
    .venv/bin/python bench/bodies.py --repeat 50 --server make-serve:1
"""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kv_http  # a sibling script, not a package: found through the path entry above

TARGET_CPU_MS = 50
MIB = 1024 * 1024


@dataclass
class Case:
    label: str
    method: str
    path: str
    body: bytes
    chunked: bool = False
    content_type: str = "application/json"


@dataclass
class Row:
    case: Case
    statuses: dict[int, int]
    cpu_ms: float
    wall_ms: float


def cases(namespace: str) -> list[Case]:
    many_keys = json.dumps({"keys": [f"k{index}" for index in range(1001)]}).encode()
    # As many short keys as fit under the bulk cap: the most parsing a refusal can cost.
    packed_keys = json.dumps({"keys": [f"k{index}" for index in range(90_000)]}).encode()
    huge_keys = json.dumps({"keys": ["k" * 500] * 16_000}).encode()  # ~8 MiB
    # Within bulk set's 8 MiB cap, 150 times its item limit, each item an object with an exact number.
    many_entries = json.dumps({"entries": [{"keyPath": "a", "valueType": "NUMBER", "value": 1}] * 150_000}).encode()
    tiny_arrays = b'{"keys": [' + b",".join([b"[]"] * 300_000) + b"]}"
    numbers = b"[" + b",".join([b"0"] * 3_500_000) + b"]"  # 7 MiB: as exact JSON, 3.5 million Decimals
    one_huge_entry = b'{"entries": [{"keyPath": "a", "valueType": "JSON", "value": ' + numbers + b"}]}"
    numbers_4mb = b'{"value": [' + b",".join([b"0"] * 1_900_000) + b"]}"
    escapes = b'"' + b'\\",' * 2_600_000 + b'"'  # 7.8 MB of escaped quotes and commas: few values
    escaped_entry = b'{"entries": [{"keyPath": "a", "valueType": "STRING", "value": ' + escapes + b"}]}"
    small_entry = b'{"keyPath": "k", "valueType": "STRING", "value": "v"}'
    huge_then_many = one_huge_entry[:-2] + b"," + b",".join([small_entry] * 1001) + b"]}"
    bulk_get = f"/api/v1/kv/{namespace}/bulk/get"
    return [
        Case("bulk/get, 8 MiB, Content-Length", "POST", bulk_get, huge_keys),
        Case("bulk/get, 8 MiB, chunked", "POST", bulk_get, huge_keys, chunked=True),
        Case("bulk/get, 1001 keys", "POST", bulk_get, many_keys),
        Case(f"bulk/get, {len(packed_keys) // 1024} KiB of short keys", "POST", bulk_get, packed_keys),
        Case("bulk/get, 300,000 empty arrays", "POST", bulk_get, tiny_arrays),
        Case("bulk/delete, 8 MiB, chunked", "POST", f"/api/v1/kv/{namespace}/bulk/delete", huge_keys, chunked=True),
        Case(
            f"bulk/set, 150,000 entries ({len(many_entries) // MIB} MiB)",
            "POST",
            f"/api/v1/kv/{namespace}/bulk/set",
            many_entries,
        ),
        Case("bulk/set, one entry of 3.5M numbers", "POST", f"/api/v1/kv/{namespace}/bulk/set", one_huge_entry),
        Case("items PUT, 1.9M numbers (4 MB)", "PUT", "/kv/items/big", numbers_4mb),
        Case("bulk/set, one entry of 7.8 MB of escapes", "POST", f"/api/v1/kv/{namespace}/bulk/set", escaped_entry),
        Case("bulk/set, a huge entry, then 1001 more", "POST", f"/api/v1/kv/{namespace}/bulk/set", huge_then_many),
        Case(
            "key PUT, ceiling + 1 byte",
            "PUT",
            "/api/v1/kv/buckets/bench/keys/big",
            b"x" * (8 * MIB + 1),
            content_type="application/octet-stream",
        ),
        Case("config POST, 2 MiB", "POST", "/api/v1/config/big", b'{"a":"' + b"x" * (2 * MIB) + b'"}'),
        Case("config POST, 1 MiB of [", "POST", "/api/v1/config/deep", b"[" * MIB),
        Case("items PUT, 5 MB chunked", "PUT", "/kv/items/big", b'{"value":"' + b"x" * 5_000_000 + b'"}', chunked=True),
    ]


def send(port: int, token: str, case: Case) -> int:
    """One request on a fresh connection; the status the server answered (0: none)."""
    framing = "Transfer-Encoding: chunked" if case.chunked else f"Content-Length: {len(case.body)}"
    head = (
        f"{case.method} {case.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {case.content_type}\r\n{framing}\r\nConnection: close\r\n\r\n"
    ).encode()
    body = case.body
    if case.chunked:
        step = 64 * 1024
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in
                        (body[i : i + step] for i in range(0, len(body), step))) + b"0\r\n\r\n"  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # A refusal may come (and the server close) before the whole body is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0


def measure(args: argparse.Namespace, port: int, token: str, pid: int, case: Case) -> Row:
    def service() -> list[int]:
        return kv_http.process_tree(pid) + kv_http.database_backends(args)

    send(port, token, case)  # warm-up: imports, connections, caches
    statuses: dict[int, int] = {}
    cpu_before, started = kv_http.cpu_seconds(service()), time.perf_counter()
    for _ in range(args.repeat):
        status = send(port, token, case)
        statuses[status] = statuses.get(status, 0) + 1
    wall = time.perf_counter() - started
    cpu = kv_http.cpu_seconds(service()) - cpu_before
    return Row(case=case, statuses=statuses, cpu_ms=cpu * 1000 / args.repeat, wall_ms=wall * 1000 / args.repeat)


def guard_cost(rounds: int = 20_000) -> dict[str, float]:
    """Microseconds of CPU the ASGI body guard and the middleware add to one request, measured in-process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvsite.settings")
    sys.path.insert(0, str(kv_http.REPO))
    import django

    django.setup()
    from django.test import RequestFactory

    from kvsite.http.bodies import AsgiBodyGuard, RequestBodyMiddleware

    async def inner(scope, receive, send) -> None:
        await receive()

    async def receive() -> dict:
        return {"type": "http.request", "body": b"v" * 100, "more_body": False}

    guard = AsgiBodyGuard(inner)
    path = "/api/v1/kv/buckets/bench/keys/k00000"
    base = {"type": "http", "path": path, "root_path": "", "method": "GET", "query_string": b""}
    common = [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer kvs_x"), (b"user-agent", b"wrk")]
    get = {**base, "headers": common}
    put = {**base, "method": "PUT", "headers": [*common, (b"content-length", b"100")]}

    async def run(scope: dict, app=guard) -> float:
        started = time.process_time()
        for _ in range(rounds):
            await app(scope, receive, None)
        return (time.process_time() - started) * 1e6 / rounds

    middleware = RequestBodyMiddleware(lambda request: None)
    request = RequestFactory().get(path)
    started = time.process_time()
    for _ in range(rounds):
        middleware(request)
    middleware_us = (time.process_time() - started) * 1e6 / rounds
    # The harness itself (an app that reads the body, called directly) is subtracted.
    harness = asyncio.run(run(put, inner))
    return {
        "guard, GET (no body)": asyncio.run(run(get)) - harness,
        "guard, PUT of 100 bytes": asyncio.run(run(put)) - harness,
        "middleware, any request": middleware_us,
    }


def print_guard_cost(costs: dict[str, float]) -> None:
    print("\nThe body check in-process (CPU per request; a whole key GET costs ~1,000 us, a PUT ~2,500 us):")
    for label, micros in costs.items():
        print(f"  {label:<28} {micros:6.1f} us")


def print_report(args: argparse.Namespace, rows: list[Row]) -> bool:
    print(f"\nRefusing bad bodies, {args.server_spec}, {args.repeat} each, load average before {args.load_before:.1f}")
    print(f"{'case':<40} {'answers':<14} {'server CPU/refusal':>18} {'wall/refusal':>13}")
    met = True
    for row in rows:
        answers = ", ".join(f"{status}x{count}" for status, count in sorted(row.statuses.items()))
        refused = all(400 <= status < 500 for status in row.statuses)
        ok = refused and row.cpu_ms < TARGET_CPU_MS
        met &= ok
        mark = "" if ok else "  <- over target" if refused else "  <- not refused"
        print(f"{row.case.label:<40} {answers:<14} {row.cpu_ms:>15.2f} ms {row.wall_ms:>10.1f} ms{mark}")
    print(f"target: every body refused with a 4xx at < {TARGET_CPU_MS} ms of server CPU: {'met' if met else 'NOT met'}")
    return met


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="make-serve:1", help="as bench/kv_http.py's (default make-serve:1)")
    parser.add_argument("--repeat", type=int, default=20, help="requests per case (default 20)")
    parser.add_argument("--database", default="kvsite_bench_bodies", help="dropped and recreated")
    kv_http.add_service_arguments(parser, redis="redis://127.0.0.1:6379/0")
    parser.add_argument("--guard-only", action="store_true", help="only the in-process cost of the body check")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON (bench/report.py reads it)")
    args = parser.parse_args(argv)
    args.workers, args.threads = 1, 4
    args.server_spec = kv_http.parse_server(parser, args, args.server)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    costs = guard_cost()
    print_guard_cost(costs)
    if args.guard_only:
        return 0
    with kv_http.bench_session(args, prefix="kv-bodies-") as (processes, workdir):
        env = kv_http.django_env(args)
        token = kv_http.prepare_database(args, env)
        with kv_http.running_server(processes, args, args.server_spec, env, workdir) as (base, pid):
            kv_http.seed_kvsite(base, token, b"v")
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            created = kv_http.http("POST", f"{base}/api/v1/kv/namespaces", headers=auth,
                                   body=json.dumps({"name": "bodies", "applicationId": "bench"}).encode())  # fmt: skip
            namespace = json.loads(created)["id"]
            port = int(base.rsplit(":", 1)[1])
            rows = []
            for case in cases(namespace):
                print(f"measuring {case.label} ...", flush=True)
                rows.append(measure(args, port, token, pid, case))
        met = print_report(args, rows)
        if args.json:
            results = {
                "guard_us": costs,
                "server": str(args.server_spec),
                "repeat": args.repeat,
                "load_before": args.load_before,
                "rows": [{"label": row.case.label, "statuses": row.statuses, "cpu_ms": row.cpu_ms} for row in rows],
            }
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
