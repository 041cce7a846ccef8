"""Items API throughput next to the bucket API's, on one server in one run, measured with wrk.

Both APIs sit on the same storage core, so the items API should match the bucket
API within 10%: its extra work is the JSON envelope, exact JSON parsing and
rendering, and a rate-limit token per request. One run prepares a fresh
PostgreSQL database (its own, never ``test``), starts kvsite once and measures,
at the same concurrency and for the same duration each:

* ``GET /api/v1/kv/buckets/bench/keys/k00000`` against ``GET /kv/items/k00000``;
* ``PUT /api/v1/kv/buckets/bench/keys/kNNNNN`` (raw bytes) against
  ``PUT /kv/items/kNNNNN`` (``{"value": "<same bytes as a JSON string>"}``),
  cycling through the same number of keys.

Each round measures the four rows in an order that alternates between rounds
(bucket first, then items first), since a shared machine drifts; the report
gives every round and the medians. Next to req/s and latency it gives the
CPU time per request of the server's processes and their PostgreSQL backends,
which other load on the machine disturbs far less than req/s: on a busy
machine compare that column. Last, the same four requests are timed in one
process through Django's test client (``--in-process N`` each, CPU time of that
process only): the two APIs' own cost without HTTP server, network or other
processes in the way. Server start-up, the database, wrk and the CPU
accounting come from ``bench/kv_http.py``.

    .venv/bin/python bench/items.py --rounds 3 --duration 10
    .venv/bin/python bench/items.py --redis redis://127.0.0.1:6379/14   # limiter state in Redis
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kv_http  # a sibling script, not a package: found through the path entry above

ITEM_PATH = "/kv/items/"
TARGET_RATIO = 0.9  # items req/s at least 90% of the bucket API's
TARGET_P99_RATIO = 1.1  # and p99 at most 110%


# Runs in a child process with the server's environment: N requests of each row
# through the test client, alternating bucket and items, CPU time of this process.
IN_PROCESS = """
import json, sys, time
import django
django.setup()
from django.test import Client
token, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION="Bearer " + token)
value = b"v" * size
rows = {
    "bucket GET": lambda i: client.get("/api/v1/kv/buckets/bench/keys/k00000"),
    "items GET": lambda i: client.get("/kv/items/k00000"),
    "bucket PUT": lambda i: client.generic("PUT", "/api/v1/kv/buckets/bench/keys/k%05d" % (i % 1000), value),
    "items PUT": lambda i: client.generic(
        "PUT", "/kv/items/k%05d" % (i % 1000), b'{"value":"' + value + b'"}', content_type="application/json"
    ),
}
cpu = {name: [] for name in rows}
for repeat in range(4):
    for name, request in (rows.items() if repeat % 2 else reversed(rows.items())):
        for i in range(20):
            request(i)
        start = time.process_time()
        for i in range(count):
            assert request(i).status_code == 200
        cpu[name].append((time.process_time() - start) * 1000 / count)
print(json.dumps({name: sorted(values)[len(values) // 2] for name, values in cpu.items()}))
"""


@dataclass
class Round:
    bucket_get: kv_http.Result
    items_get: kv_http.Result
    bucket_put: kv_http.Result
    items_put: kv_http.Result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="gunicorn", choices=sorted(kv_http.SERVERS), help="default gunicorn")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker for gthread/granian-wsgi")
    parser.add_argument("--duration", type=float, default=10, help="seconds per row (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per row (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four rows (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per written value (default 100)")
    parser.add_argument("--keys", type=int, default=1000, help="distinct keys the PUTs cycle through")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument(
        "--database", default="kvsite_itemsbench", help="dropped and recreated (default kvsite_itemsbench)"
    )
    parser.add_argument("--redis", default="", help="REDIS_URL: rate-limit buckets (and channel layer) in Redis")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra server environment")
    parser.add_argument(
        "--in-process", type=int, default=300, metavar="N", help="requests per row timed in-process (0: skip)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the server log")
    return parser.parse_args(argv)


def items_env(args: argparse.Namespace) -> dict[str, str]:
    env = kv_http.django_env(args)
    # Limits high enough never to refuse, so the limiter's cost is measured but not its 429s.
    env.setdefault("KV_ITEMS_READ_RATE", "1000000000")
    env.setdefault("KV_ITEMS_READ_BURST", "1000000000")
    env.setdefault("KV_ITEMS_WRITE_RATE", "1000000000")
    env.setdefault("KV_ITEMS_WRITE_BURST", "1000000000")
    env.setdefault("KV_ITEMS_RATELIMIT_PREFIX", f"kvbench-{os.getpid()}")
    return env


def seed_items(base: str, token: str, value: bytes) -> None:
    kv_http.http(
        "PUT",
        f"{base}{ITEM_PATH}{kv_http.READ_KEY}",
        body=b'{"value":"' + value + b'"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def measure_round(args: argparse.Namespace, base: str, token: str, root_pid: int, *, items_first: bool) -> Round:
    value = "v" * args.value_size
    rows = {
        "bucket_get": ("bucket GET", f"{base}{kv_http.KEY_PATH}{kv_http.READ_KEY}", "kv-get", value),
        "items_get": ("items GET", f"{base}{ITEM_PATH}{kv_http.READ_KEY}", "kv-get", value),
        "bucket_put": ("bucket PUT", f"{base}{kv_http.KEY_PATH}", "kv-put", value),
        "items_put": ("items PUT", f"{base}{ITEM_PATH}", "kv-put", f'{{"value":"{value}"}}'),
    }
    pairs = [("bucket_get", "items_get"), ("bucket_put", "items_put")]
    order = [name for pair in pairs for name in (reversed(pair) if items_first else pair)]
    results = {}
    for name in order:
        label, url, mode, body = rows[name]
        extra = {"KV_BENCH_TOKEN": token, "KV_BENCH_PATH": kv_http.url_path(url), "KV_BENCH_VALUE": body}
        if name.startswith("items"):
            extra["KV_BENCH_CONTENT_TYPE"] = "application/json"
        results[name] = kv_http.wrk(
            args, label, url, mode, duration=args.duration, extra_env=extra, service=lambda: service(args, root_pid)
        )
    return Round(**results)


def service(args: argparse.Namespace, root_pid: int) -> list[int]:
    """The processes a row's CPU time is charged to: the server's and its database backends."""
    return kv_http.process_tree(root_pid) + kv_http.database_backends(args)


def warm_up(args: argparse.Namespace, base: str, token: str) -> None:
    value = "v" * args.value_size
    for url, mode, body in (
        (f"{base}{kv_http.KEY_PATH}{kv_http.READ_KEY}", "kv-get", value),
        (f"{base}{ITEM_PATH}{kv_http.READ_KEY}", "kv-get", value),
        (f"{base}{kv_http.KEY_PATH}", "kv-put", value),
        (f"{base}{ITEM_PATH}", "kv-put", f'{{"value":"{value}"}}'),
    ):
        extra = {"KV_BENCH_TOKEN": token, "KV_BENCH_PATH": kv_http.url_path(url), "KV_BENCH_VALUE": body}
        if ITEM_PATH in url:
            extra["KV_BENCH_CONTENT_TYPE"] = "application/json"
        kv_http.wrk(args, "warm-up", url, mode, duration=args.warmup, extra_env=extra)


def measure_in_process(args: argparse.Namespace, env: dict[str, str], token: str) -> dict[str, float]:
    """Median CPU ms per request of each row, timed through Django's test client in a child process."""
    completed = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, token, str(args.in_process), str(args.value_size)],
        cwd=kv_http.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def print_in_process(figures: dict[str, float]) -> None:
    print("\nin-process CPU per request (Django test client, no HTTP server; median of 4 passes):")
    for operation in ("GET", "PUT"):
        bucket, items = figures[f"bucket {operation}"], figures[f"items {operation}"]
        print(f"  {operation}: bucket {bucket:.2f} ms, items {items:.2f} ms, ratio {items / bucket:.2f}")


def print_report(args: argparse.Namespace, rounds: list[Round]) -> bool:
    print(
        f"\n{args.server} x{args.workers}, {args.connections} connections, {args.duration:g} s per row, "
        f"wrk {args.wrk_threads} threads, {args.value_size}-byte values over {args.keys} keys, "
        f"{os.cpu_count()} CPUs, rate limiter {'in Redis' if args.redis else 'per process'}, "
        f"load average before {args.load_before:.1f}, after {os.getloadavg()[0]:.1f}\n"
    )
    header = (
        f"| {'round':<5} | {'row':<10} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} "
        f"| {'CPU ms/req':>10} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for number, measured in enumerate(rounds, 1):
        for result in (measured.bucket_get, measured.items_get, measured.bucket_put, measured.items_put):
            cpu = f"{result.service_cpu_ms:.2f}" if result.service_cpu_ms > 0 else "-"
            print(
                f"| {number:<5} | {result.label:<10} | {result.rps:>7.0f} | {result.p50_ms:>7.1f} "
                f"| {result.p99_ms:>7.1f} | {result.errors:>6} | {cpu:>10} |"
            )
    print()
    met = True
    for operation in ("get", "put"):
        bucket = [getattr(measured, f"bucket_{operation}") for measured in rounds]
        items = [getattr(measured, f"items_{operation}") for measured in rounds]
        rps_ratio = statistics.median(i.rps / b.rps for i, b in zip(items, bucket, strict=True))
        p99_ratio = statistics.median(i.p99_ms / b.p99_ms for i, b in zip(items, bucket, strict=True))
        errors = sum(result.errors for result in bucket + items)
        ok = rps_ratio >= TARGET_RATIO and p99_ratio <= TARGET_P99_RATIO and not errors
        met = met and ok
        bucket_rps, bucket_p99 = statistics.median(r.rps for r in bucket), statistics.median(r.p99_ms for r in bucket)
        items_rps, items_p99 = statistics.median(r.rps for r in items), statistics.median(r.p99_ms for r in items)
        print(
            f"{operation.upper()}: bucket median {bucket_rps:.0f} req/s p99 {bucket_p99:.1f} ms; "
            f"items median {items_rps:.0f} req/s p99 {items_p99:.1f} ms; "
            f"median ratio items/bucket req/s {rps_ratio:.2f}, p99 {p99_ratio:.2f}; errors {errors} -> "
            f"{'ok' if ok else 'MISSED'} (target req/s >= {TARGET_RATIO}, p99 <= {TARGET_P99_RATIO})"
        )
        # A database backend that exits during a row takes its CPU time with it (a
        # negative or low figure): rounds with an unusable figure are left out.
        pairs = [(i, b) for i, b in zip(items, bucket, strict=True) if i.service_cpu_ms > 0 and b.service_cpu_ms > 0]
        if pairs:
            print(
                f"     CPU per request (server + database), {len(pairs)} usable round(s): bucket "
                f"{statistics.median(b.service_cpu_ms for _, b in pairs):.2f} ms, items "
                f"{statistics.median(i.service_cpu_ms for i, _ in pairs):.2f} ms, median ratio "
                f"{statistics.median(i.service_cpu_ms / b.service_cpu_ms for i, b in pairs):.2f}"
            )
    return met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("psql") is None:
        sys.exit("missing wrk or psql: apt-get install -y wrk postgresql-client")
    value = b"v" * args.value_size
    with kv_http.bench_session(args, prefix="kv-items-bench-") as (processes, workdir):
        env = items_env(args)
        print(f"preparing database {args.database} ...", flush=True)
        token = kv_http.prepare_database(args, env)
        server = kv_http.ServerSpec(kind=args.server, workers=args.workers, threads=args.threads)
        with kv_http.running_server(processes, args, server, env, workdir) as (base, root_pid):
            kv_http.seed_kvsite(base, token, value)
            seed_items(base, token, value)
            print(f"warming up {args.server} x{args.workers} ...", flush=True)
            warm_up(args, base, token)
            rounds = []
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds} ...", flush=True)
                rounds.append(measure_round(args, base, token, root_pid, items_first=bool(number % 2)))
        met = print_report(args, rounds)
        if args.in_process:
            print_in_process(measure_in_process(args, env, token))
        return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
