"""Run every benchmark in sequence and write bench/README.md (what ``make bench`` does).

The benchmarks, each also runnable on its own (see its docstring):

1. ``bench/kv_http.py``: GET, PUT and CAS-update of one key, the bare ``/health``
   view, and etcd for reference, with wrk at 32 connections against granian WSGI
   (2 workers x 4 threads) in production settings on PostgreSQL + Redis;
2. ``bench/listing.py``: 100 keys under a prefix, and a page of 100 from a cursor,
   in a 1,000,000-key bucket (loaded once into ``kvsite_bench_1m`` and kept: the
   first run spends a minute or more loading it, later runs reuse it);
3. ``bench/bulk.py``: bulk set of 1000 entries per call (namespaces API);
4. ``bench/watch.py``: 1000 watchers, 20 writes/s, delivery latency and exactly-once;
5. ``bench/bodies.py``: what checking a request body costs every request, and what
   refusing a bad one (over its cap, over its item count, too deep) costs the server.

It records the 1-minute load average before each row, the machine, the date and the
exact commands, and writes one table with the targets of issues #5-#9. Figures taken
while other work runs on the machine are not comparable with quiet-machine ones: the
table says how loaded it was. About 5 minutes with the 1M-key bucket cached, 1-5 more to load it.

    .venv/bin/python bench/report.py                      # all, writes bench/README.md
    .venv/bin/python bench/report.py --only kv_http,bulk   # some; the others' rows are left out
    .venv/bin/python bench/report.py --quick --output /tmp/bench.md   # smoke run: short, small bucket
"""

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCHES = ("kv_http", "listing", "bulk", "watch", "bodies")

# Targets from the issues, for this 2-core machine shared by server, database and load generator.
TARGET_GET_RPS = 1500
TARGET_GET_OF_BARE = 0.8
TARGET_PUT_RPS = 600
TARGET_BULK_PER_S = 5000
TARGET_LIST_P99_MS = 50
TARGET_WATCH_P99_MS = 250
TARGET_REFUSAL_CPU_MS = 50


@dataclass
class Row:
    measurement: str
    figure: str
    p50: str = "-"
    p99: str = "-"
    target: str = "-"
    met: bool | None = None
    load: float | None = None


@dataclass
class BenchRun:
    name: str
    command: list[str]
    seconds: float = 0.0
    load_before: float = 0.0
    returncode: int = 0
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: str = ""


# --- Running ------------------------------------------------------------------------------


def run(name: str, command: list[str], scratch: Path) -> tuple[BenchRun, str]:
    """Run one benchmark, echoing its output; return the run and its stdout."""
    bench = BenchRun(name=name, command=display(command, scratch), load_before=os.getloadavg()[0])
    print(f"\n=== {name}: {shlex.join(bench.command)}  (load {bench.load_before:.1f})", flush=True)
    started = time.monotonic()
    lines = []
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, bufsize=1) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    bench.seconds = time.monotonic() - started
    bench.returncode = process.returncode
    return bench, "".join(lines)


def run_for_results(name: str, options: list[str], scratch: Path) -> tuple[BenchRun, dict | None]:
    """Run ``bench/<name>.py`` with ``options`` and ``--json``; the run and the results it wrote, if any."""
    out = scratch / f"{name}.json"
    bench, _ = run(name, [sys.executable, str(HERE / f"{name}.py"), *options, "--json", str(out)], scratch)
    if not out.exists():
        bench.failed = f"bench/{name}.py exited with {bench.returncode} and wrote no results"
        return bench, None
    return bench, json.loads(out.read_text())


def display(command: list[str], scratch: Path) -> list[str]:
    """The command as a reader would type it from the repository root (the scratch folder shown as /tmp)."""
    shown = [".venv/bin/python" if part == sys.executable else part for part in command]
    shown = [str(Path(part).relative_to(REPO)) if part.startswith(str(REPO)) else part for part in shown]
    return [part.replace(str(scratch), "/tmp") for part in shown]


def ms(value: float) -> str:
    return f"{value:,.1f} ms"


def rate(value: float, unit: str = "req/s") -> str:
    return f"{value:,.0f} {unit}"


# --- Benchmarks ----------------------------------------------------------------------------


def bench_kv_http(args: argparse.Namespace, scratch: Path) -> BenchRun:
    options = ["--server", args.server, "--duration", f"{args.duration:g}", "--database", f"{args.db_prefix}bench"]
    options += [] if args.etcd else ["--no-etcd"]
    bench, data = run_for_results("kv_http", options, scratch)
    if data is None:
        return bench
    for server in data["servers"]:
        name, get, put, bare, cas = server["server"], server["get"], server["put"], server["bare"], server["cas"]
        of_bare = get["rps"] / bare["rps"] if bare["rps"] else 0.0
        bare_db = server.get("bare_db")
        of_bare_db = get["rps"] / bare_db["rps"] if bare_db and bare_db["rps"] else 0.0

        def row(
            result: dict, what: str, target: str = "-", met: bool | None = None, name: str = name, note: str = ""
        ) -> Row:
            errors = f", {result['errors']} errors" if result["errors"] else ""
            return Row(
                measurement=f"{what} ({name}, {data['connections']} conn.)",
                figure=rate(result["rps"]) + note + errors + f"; {result['service_cpu_ms']:.2f} ms CPU/req",
                p50=ms(result["p50_ms"]),
                p99=ms(result["p99_ms"]),
                target=target,
                met=met if not result["errors"] else False,
                load=result["load_before"],
            )

        bench.rows += [
            row(
                get,
                "GET one key",
                f"≥ {TARGET_GET_RPS:,} req/s and ≥ {TARGET_GET_OF_BARE}x bare",
                get["rps"] >= TARGET_GET_RPS and of_bare >= TARGET_GET_OF_BARE,
                note=f", {of_bare:.2f}x bare, {of_bare_db:.2f}x bare+database",
            ),
            row(put, "PUT one key", f"≥ {TARGET_PUT_RPS} req/s", put["rps"] >= TARGET_PUT_RPS),
        ]
        if cas:
            bench.rows.append(row(cas, "CAS update: PUT with If-Match, a key per connection"))
        bench.rows.append(row(bare, "bare `/health` view, the framework's ceiling"))
        if bare_db:
            bench.rows.append(row(bare_db, "bare `/ready` view: one database round trip, no auth"))
    for result in data["etcd"] or []:
        bench.rows.append(
            Row(
                measurement=f"{result['label']} (reference)",
                figure=rate(result["rps"]) + f"; {result['service_cpu_ms']:.2f} ms CPU/req",
                p50=ms(result["p50_ms"]),
                p99=ms(result["p99_ms"]),
                load=result["load_before"],
            )
        )
    return bench


def bench_listing(args: argparse.Namespace, scratch: Path) -> BenchRun:
    options = ["--server", args.server, "--duration", f"{args.duration:g}"]
    options += ["--keys", str(args.listing_keys), "--database", args.listing_database]
    bench, data = run_for_results("listing", options, scratch)
    if data is None:
        return bench
    for result in data["rows"]:
        prefix = "?filter=" in result["label"]
        errors = f", {result['errors']} errors" if result["errors"] else ""
        light = "conn.)" in result["label"]
        connections = "" if light else f" ({args.connections} conn.)"
        bench.rows.append(
            Row(
                measurement=f"{result['label']}{connections}, {data['keys']:,}-key bucket",
                figure=rate(result["rps"]) + errors + f"; {result['service_cpu_ms']:.2f} ms CPU/req",
                p50=ms(result["p50_ms"]),
                p99=ms(result["p99_ms"]),
                target=f"p99 ≤ {TARGET_LIST_P99_MS} ms" if prefix else "-",
                met=(result["p99_ms"] <= TARGET_LIST_P99_MS and not result["errors"]) if prefix else None,
                load=result["load_before"],
            )
        )
    if data["loaded_now"]:
        bench.notes.append(
            f"the {data['keys']:,}-key bucket was loaded in this run ({data['load_seconds']:.0f} s, through the bulk "
            "write path) and is kept for the next runs"
        )
    else:
        bench.notes.append(f"the {data['keys']:,}-key bucket was loaded by an earlier run and reused (checked first)")
    return bench


BULK_LINE = re.compile(
    r"^(?P<name>service new|service overwrite|HTTP overwrite|secret overwrite)\s+"
    r"(?P<median>[\d,]+)\s+(?P<best>[\d,]+)\s+(?P<cpu>[\d,]+)\s+(?P<ms>[\d.]+)\s*$",
    re.MULTILINE,
)
BULK_NAMES = {
    "service new": "bulk set, 1000 new keys per call (service)",
    "service overwrite": "bulk set, overwrite 1000 keys per call (service)",
    "HTTP overwrite": "bulk set, overwrite 1000 keys per call (HTTP `POST …/bulk/set`)",
    "secret overwrite": "bulk set, overwrite 1000 keys per call (secret namespace)",
}


def bench_bulk(args: argparse.Namespace, scratch: Path) -> BenchRun:
    command = [sys.executable, str(HERE / "bulk.py"), "--rounds", str(args.bulk_rounds)]
    command += ["--database", f"{args.db_prefix}bulkbench"]
    bench, output = run("bulk", command, scratch)
    for match in BULK_LINE.finditer(output):
        median, cpu = (float(match[name].replace(",", "")) for name in ("median", "cpu"))
        bench.rows.append(
            Row(
                measurement=BULK_NAMES[match["name"]],
                figure=f"{median:,.0f} entries/s (by CPU time {cpu:,.0f}/s)",
                p50=f"{float(match['ms']):,.1f} ms per call",
                target=f"≥ {TARGET_BULK_PER_S:,} entries/s",
                met=median >= TARGET_BULK_PER_S,
                load=bench.load_before,
            )
        )
    if not bench.rows:
        bench.failed = f"bench/bulk.py exited with {bench.returncode}; no result lines in its output"
    return bench


WATCH_LINE = re.compile(
    r"rate\s+(?P<rate>[\d.]+)/s \(achieved\s+(?P<achieved>[\d.]+)\) for (?P<seconds>\d+)s: frames\s+(?P<frames>\d+)\s+"
    r"p50\s+(?P<p50>[\d.]+|nan) ms\s+p99\s+(?P<p99>[\d.]+|nan) ms\s+max\s+(?P<max>[\d.]+|nan) ms\s+"
    r"missing (?P<missing>\d+) duplicated (?P<duplicated>\d+) out-of-order (?P<disorder>\d+)"
)
WATCH_CPU = re.compile(r"\((?P<us>\d+) us per frame delivered")


def bench_watch(args: argparse.Namespace, scratch: Path) -> BenchRun:
    command = [sys.executable, str(HERE / "watch.py"), "--watchers", str(args.watchers), "--rate", "20"]
    # --max-rate 20: the step only, no search for the highest rate.
    command += [
        "--duration",
        f"{args.watch_duration:g}",
        "--max-rate",
        "20",
        "--database",
        f"{args.db_prefix}watchbench",
    ]
    bench, output = run("watch", command, scratch)
    match = WATCH_LINE.search(output)
    if match is None:
        bench.failed = f"bench/watch.py exited with {bench.returncode}; no result line in its output"
        return bench
    achieved, p99 = float(match["achieved"]), float(match["p99"])
    missing, duplicated, disorder = (int(match[name]) for name in ("missing", "duplicated", "disorder"))
    exact = not (missing or duplicated or disorder)
    cpu = WATCH_CPU.search(output)
    bench.rows.append(
        Row(
            measurement=f"watch fan-out: {args.watchers} watchers, 20 writes/s for {match['seconds']} s "
            "(2 uvicorn processes, Redis)",
            figure=f"{int(match['frames']):,} frames, writer {achieved:.1f}/s, "
            f"lost/dup/out of order {missing}/{duplicated}/{disorder}",
            p50=ms(float(match["p50"])),
            p99=ms(p99),
            target=f"p99 ≤ {TARGET_WATCH_P99_MS} ms, exactly once",
            met=p99 <= TARGET_WATCH_P99_MS and exact and achieved >= 18,
            load=bench.load_before,
        )
    )
    if cpu:
        bench.notes.append(f"watch: {cpu['us']} µs of server CPU per frame delivered")
    return bench


def bench_bodies(args: argparse.Namespace, scratch: Path) -> BenchRun:
    bench, data = run_for_results("bodies", ["--database", f"{args.db_prefix}bench_bodies"], scratch)
    if data is None:
        return bench
    guard = data["guard_us"]
    bench.rows.append(
        Row(
            measurement="request body check, in-process (every request)",
            figure=", ".join(f"{label} {micros:.1f} µs" for label, micros in guard.items()),
            load=data["load_before"],
        )
    )
    worst = max(data["rows"], key=lambda row: row["cpu_ms"])
    refused = all(400 <= int(status) < 500 for row in data["rows"] for status in row["statuses"])
    bench.rows.append(
        Row(
            measurement=f"refusing a bad body ({len(data['rows'])} kinds, {data['server']}, {data['repeat']} each)",
            figure=f"worst {worst['cpu_ms']:.1f} ms server CPU ({worst['label']})",
            target=f"4xx at < {TARGET_REFUSAL_CPU_MS} ms CPU",
            met=refused and worst["cpu_ms"] < TARGET_REFUSAL_CPU_MS,
            load=data["load_before"],
        )
    )
    bench.notes.append("bodies: " + "; ".join(f"{row['label']} {row['cpu_ms']:.1f} ms" for row in data["rows"]))
    return bench


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], BenchRun]] = {
    "kv_http": bench_kv_http,
    "listing": bench_listing,
    "bulk": bench_bulk,
    "watch": bench_watch,
    "bodies": bench_bodies,
}


# --- Report ---------------------------------------------------------------------------------


def machine() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    postgres = subprocess.run(
        ["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-Atc", "SHOW server_version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    redis = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"], capture_output=True, text=True).stdout
    redis_version = next((line.split(":", 1)[1].strip() for line in redis.splitlines() if "redis_version" in line), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
    return [
        f"{os.cpu_count()} CPUs ({model or platform.processor()}), {memory / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"PostgreSQL {postgres or '?'} and Redis {redis_version} on the same machine, sharing its CPUs with the "
        "servers and the load generators",
        f"Python {platform.python_version()}, commit {commit.stdout.strip()}"
        + (" with uncommitted changes" if dirty.stdout.strip() else ""),
    ]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(args: argparse.Namespace, runs: list[BenchRun], started: datetime, seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python bench/report.py`); do not edit by hand. "
        "Each benchmark also runs on its own: see the docstring at the top of each script.",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} minutes"
        + (" — **a quick smoke run (`--quick`): short rows and a small bucket, not figures**" if args.quick else "")
        + ".",
        "",
        *([f"**{args.note}**", ""] if args.note else []),
        *(f"- {line}" for line in machine()),
        "",
        "**Figures taken while other work runs on the machine are not comparable** with each other or with a "
        "quiet run: the last column is the 1-minute load average just before each row. It decays slowly, so "
        "on a quiet machine the run's own earlier rows keep it at 1-6; check the first row's.",
        "",
        "| measurement | figure | p50 | p99 | target | met? | load before |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench in runs:
        for row in bench.rows:
            met = {True: "yes", False: "**no**", None: "-"}[row.met]
            load = f"{row.load:.1f}" if row.load is not None else "-"
            cells = (row.measurement, row.figure, row.p50, row.p99, row.target, met, load)
            lines.append("| " + " | ".join(cell(part) for part in cells) + " |")
        if bench.failed:
            lines.append(f"| {bench.name} | **failed**: {cell(bench.failed)} | | | | | {bench.load_before:.1f} |")
    notes = [note for bench in runs for note in bench.notes]
    lines += [
        "",
        "Notes:",
        "",
        "- GET, PUT, CAS and the bare view: wrk, 32 connections, granian WSGI 2 workers x 4 threads, production "
        "settings (debug off, Redis channel layer), PostgreSQL. CPU/req: CPU time of the server processes and "
        "their PostgreSQL backends per request, which other load on the machine disturbs far less than req/s "
        "(2 idle CPUs could serve about 2000 / CPU-ms requests a second).",
        "- The bare views: `/health` returns a constant (no auth, no database); `/ready` makes one database round "
        'trip (`SELECT 1`). The target "GET ≥ 0.8x bare" is judged against `/health`, as the issue names it; '
        "no view that reads the database can come near it, so the GET row also gives its ratio to `/ready`.",
        "- CAS update: each wrk connection (one per wrk thread) owns a key and sends `If-Match` with the revision "
        "its previous answer returned; a 412 would count as an error.",
        "- Listing: `tenant.<t>.user.*` and `tenant.<t>.>` each select exactly 100 of the bucket's keys; the page "
        "row is `?limit=100&cursor=` from a random key. At 32 connections two cores are saturated and p99 is mostly "
        "queueing; the 4-connection row is closer to the latency one request sees.",
        "- Bulk set: in-process calls of 1000 entries (no HTTP server, except the HTTP row through Django's test "
        "client); figure = median of the rounds by wall clock, with the rate by CPU time of the process and its "
        "PostgreSQL backend beside it; p50 = median time per call.",
        "- Watch: delivery latency from commit to receipt over every frame of every watcher; half the watchers "
        "filter to every other key.",
        *(f"- {note}" for note in notes),
        "",
        "Commands (from the repository root):",
        "",
        "```sh",
        *(shlex.join(bench.command) for bench in runs),
        "```",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    parser.add_argument("--output", default=str(HERE / "README.md"), help="where to write (default bench/README.md)")
    parser.add_argument(
        "--server", default="granian-wsgi:2x4", help="server for the HTTP rows (default granian-wsgi:2x4)"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk row (default 10)")
    parser.add_argument("--connections", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--listing-keys", type=int, default=1_000_000)
    parser.add_argument("--listing-database", default="")
    parser.add_argument("--bulk-rounds", type=int, default=10)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--watch-duration", type=float, default=30, help="seconds of writes at 20/s (default 30)")
    parser.add_argument("--no-etcd", dest="etcd", action="store_false", help="skip etcd's reference rows")
    parser.add_argument(
        "--db-prefix",
        default="kvsite_",
        help="the benches' throw-away databases are <prefix>bench, <prefix>bulkbench, <prefix>watchbench",
    )
    parser.add_argument("--note", default="", help="a line for the top of the report (why these figures are special)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s rows, a 20,000-key bucket, 200 watchers")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", args.db_prefix) or args.db_prefix.startswith("test"):
        parser.error("--db-prefix must be a plain lower-case identifier not starting with 'test'")
    if args.quick:
        args.duration, args.listing_keys, args.bulk_rounds = 3, 20_000, 3
        args.watchers, args.watch_duration = 200, 5
    if not args.listing_database:
        args.listing_database = (
            "kvsite_bench_1m" if args.listing_keys == 1_000_000 else f"kvsite_bench_{args.listing_keys}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, clock = datetime.now(UTC), time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="kv-report-") as scratch:
        for name in BENCHES:
            if name in args.only:
                runs.append(RUNNERS[name](args, Path(scratch)))
    document = render(args, runs, started, time.monotonic() - clock)
    Path(args.output).write_text(document)
    print(f"\nwrote {args.output} ({(time.monotonic() - clock) / 60:.1f} minutes)")
    return 1 if any(bench.failed for bench in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
