"""HTTP throughput of the KV API, next to a bare Django view and etcd, measured with wrk.

One run starts everything it needs and stops it again: a throw-away etcd 3.4 on
loopback, a fresh PostgreSQL database (migrated, with an admin API key and a
bucket), and kvsite under each server asked for, in production settings
(DJANGO_DEBUG=0, the Redis channel layer when Redis answers on 127.0.0.1:6379).
It then measures, at the same concurrency and for the same duration each:

* ``GET`` and ``PUT`` of one key through ``/api/v1/kv/buckets/{bucket}/keys/{key}``;
* ``CAS``: ``PUT`` with ``If-Match`` of the key's current revision, read from the
  previous response (each wrk connection owns one key, so conflicts are rare);
* ``GET /health``, a plain ``JsonResponse`` on the same server: the framework ceiling;
* etcd's ``range`` and ``put`` through its v3 JSON gateway: a dedicated KV store.

and prints requests/s, p50 and p99 side by side with the ratios our/bare and our/etcd,
plus the CPU time each request cost the server and its database backends: on a
machine that other work shares, req/s swing with that load, CPU per request far less.

Needs ``wrk`` and ``etcd`` (Debian: ``apt-get install wrk etcd-server``), PostgreSQL
reachable with ``createdb`` rights (default ``postgres://postgres@127.0.0.1:5432``),
and the server packages in the running interpreter (granian only for its rows)::

    .venv/bin/python bench/kv_http.py --server gunicorn --workers 4 --duration 15
    .venv/bin/python bench/kv_http.py --server gunicorn:4,gunicorn-gthread:2x4,granian-wsgi:2x4,uvicorn:2
    .venv/bin/python bench/kv_http.py --server granian-wsgi:2x4 --json results.json   # for bench/report.py

Before/after a change in one run: a server spec may name another checkout of kvsite to
serve from (``git worktree add /tmp/kvsite-before <commit>``); the rows alternate::

    .venv/bin/python bench/kv_http.py --server make-serve:2@/tmp/kvsite-before,make-serve:2 --no-etcd
"""

import argparse
import base64
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "kv.lua"
BUCKET = "bench"
KEY_PATH = f"/api/v1/kv/buckets/{BUCKET}/keys/"
READ_KEY = "k00000"

# Targets from the issue, for this 2-core machine shared by server, database and wrk.
TARGET_GET_RPS = 1500
TARGET_GET_OF_BARE = 0.8
TARGET_PUT_RPS = 600

# How each server is started; {workers}, {threads} and {port} are filled in.
SERVERS: dict[str, list[str]] = {
    # Sync workers: one request at a time per process, no keep-alive (wrk reconnects).
    "gunicorn": [
        "-m", "gunicorn", "kvsite.wsgi:application", "--worker-class", "sync", "--workers", "{workers}",
        "--bind", "127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
    ],
    # Threaded workers keep connections alive; the GIL shares one core per process.
    "gunicorn-gthread": [
        "-m", "gunicorn", "kvsite.wsgi:application", "--worker-class", "gthread", "--workers", "{workers}",
        "--threads", "{threads}", "--bind", "127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
    ],
    # What `uvicorn kvsite.asgi:application` gives (with uvloop and httptools installed).
    "uvicorn": [
        "-m", "uvicorn", "kvsite.asgi:application", "--workers", "{workers}", "--host", "127.0.0.1",
        "--port", "{port}", "--no-access-log", "--log-level", "warning", "--backlog", "2048",
    ],
    # What `make serve` runs: gunicorn managing uvicorn workers on the ASGI app (with Redis, HTTP via a2wsgi).
    "make-serve": [
        "-m", "gunicorn", "kvsite.asgi:application", "--worker-class", "uvicorn.workers.UvicornWorker",
        "--workers", "{workers}", "--bind", "127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
    ],
    "granian-wsgi": [
        "-m", "granian", "--interface", "wsgi", "kvsite.wsgi:application", "--workers", "{workers}",
        "--blocking-threads", "{threads}", "--host", "127.0.0.1", "--port", "{port}", "--no-ws",
        "--log-level", "warning", "--backlog", "2048",
    ],
    "granian-asgi": [
        "-m", "granian", "--interface", "asgi", "kvsite.asgi:application", "--workers", "{workers}",
        "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning", "--backlog", "2048",
    ],
}  # fmt: skip


@dataclass
class Result:
    """One wrk measurement."""

    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    # CPU time per request of the measured side (server processes and their database
    # backends, or etcd) and of wrk: unlike req/s, hardly moved by other load on the machine.
    service_cpu_ms: float
    wrk_cpu_ms: float
    # 1-minute load average just before the row: figures taken while other work runs are not comparable.
    load_before: float = 0.0

    def bound(self) -> float:
        """Requests/s all CPUs could serve at this CPU cost per request, with nothing else running."""
        per_request = self.service_cpu_ms + self.wrk_cpu_ms
        return (os.cpu_count() or 1) * 1000 / per_request if per_request else 0.0


@dataclass(frozen=True)
class ServerSpec:
    """A server as named on the command line: ``granian-wsgi:2x4`` is 2 workers of 4 threads."""

    kind: str
    workers: int
    threads: int
    # Another checkout of kvsite to serve from (before/after rows in one run); empty: this one.
    checkout: str = ""

    def __str__(self) -> str:
        threaded = self.kind in ("gunicorn-gthread", "granian-wsgi")
        name = f"{self.kind} {self.workers}x{self.threads}" if threaded else f"{self.kind} x{self.workers}"
        return f"{name} @{Path(self.checkout).name}" if self.checkout else name


@dataclass
class ServerResults:
    """The rows measured against one kvsite server."""

    server: str
    get: Result
    put: Result
    bare: Result
    cas: Result | None = None
    # /ready: a plain Django view making one database round trip (SELECT 1), the ceiling for
    # any view that reads the database, as the "bare DRF view reading one row" was.
    bare_db: Result | None = None


@dataclass
class Processes:
    """Child processes started by this run, stopped in reverse order on exit."""

    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], *, env: dict[str, str], log: Path, cwd: Path = REPO
    ) -> subprocess.Popen:
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append((name, process))
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM the process group (server masters fork workers), SIGKILL after 10 s."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.children = [(name, child) for name, child in self.children if child is not process]

    def stop_all(self) -> None:
        for _, process in reversed(list(self.children)):
            self.stop(process)


# --- Small helpers ------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (processes gone since are skipped)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (a server master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def database_backends(args: argparse.Namespace) -> list[int]:
    """PostgreSQL backend processes connected to the bench database."""
    query = f"SELECT pid FROM pg_stat_activity WHERE datname = '{args.database}'"  # noqa: S608  (checked name)
    listed = subprocess.run(
        ["psql", f"{args.postgres.rstrip('/')}/postgres", "-At", "-c", query], capture_output=True, text=True
    )
    return [int(pid) for pid in listed.stdout.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    """One request with the standard library; raises on a non-2xx status."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the bench only talks to loopback servers it started, not {url}")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read()


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: process exited with {process.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            http("GET", url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    sys.exit(f"{url} did not answer within {timeout:.0f} s; see {log}")


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "etcd", "psql") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y wrk etcd-server postgresql-client")


# --- Database and fixtures ----------------------------------------------------------


def django_env(args: argparse.Namespace) -> dict[str, str]:
    """The production-like environment every kvsite process of the run shares."""
    alphabet = string.ascii_letters + string.digits
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="kvsite.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        DATABASE_URL=f"{args.postgres.rstrip('/')}/{args.database}",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # A throw-away master key: the bench seals no secrets, but production settings need one.
        KV_MASTER_KEYS=f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        DJANGO_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if args.redis:
        env["REDIS_URL"] = args.redis
        env["KV_CHANNEL_LAYER_PREFIX"] = "kvbench"  # apart from anything else on that Redis
    else:
        env.pop("REDIS_URL", None)
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Recreate the bench database, migrate it and return an admin API token."""
    if args.database == "test" or args.database.startswith("test_"):
        sys.exit(f"refusing to drop database {args.database!r}: it looks like a test database")
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    subprocess.run(
        ["psql", admin_url, "-q", "-v", "ON_ERROR_STOP=1",
         "-c", f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)',
         "-c", f'CREATE DATABASE "{args.database}"'],
        check=True, capture_output=True,
    )  # fmt: skip
    python = [sys.executable, "manage.py"]
    subprocess.run([*python, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    issued = subprocess.run(
        [*python, "createapikey", "bench", "--role", "admin"], cwd=REPO, env=env, check=True, capture_output=True
    )
    return issued.stdout.decode().strip().splitlines()[-1]


def seed_kvsite(base: str, token: str, value: bytes) -> None:
    """Create the bench bucket and the key that the GET rows read."""
    auth = {"Authorization": f"Bearer {token}"}
    with contextlib.suppress(urllib.error.HTTPError):  # 409: left by a previous server of this run
        http(
            "POST",
            f"{base}/api/v1/kv/buckets",
            body=json.dumps({"name": BUCKET}).encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
    http("PUT", f"{base}{KEY_PATH}{READ_KEY}", body=value, headers=auth)


# --- etcd -------------------------------------------------------------------------------


@contextlib.contextmanager
def running_etcd(processes: Processes, workdir: Path) -> Iterator[tuple[str, int]]:
    """A single-member etcd on loopback with a throw-away data directory; yields its URL and pid."""
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    log = workdir / "etcd.log"
    command = [
        "etcd", "--name", "bench", "--data-dir", str(workdir / "etcd-data"),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
        "--log-level", "warn",
    ]  # fmt: skip
    process = processes.start("etcd", command, env=dict(os.environ), log=log)
    try:
        wait_until_up(f"{url}/health", process, log)
        yield url, process.pid
    finally:
        processes.stop(process)


def etcd_gateway(url: str) -> str:
    """The JSON gateway prefix: etcd 3.4 serves /v3 and the deprecated /v3beta; older only /v3beta."""
    for prefix in ("/v3", "/v3beta"):
        try:
            http("POST", f"{url}{prefix}/kv/range", body=b'{"key":"AA=="}')
            return prefix
        except urllib.error.HTTPError:
            continue
    sys.exit(f"etcd at {url} has no v3 JSON gateway")


def seed_etcd(url: str, prefix: str, value: bytes) -> None:
    body = {
        "key": base64.b64encode(f"{BUCKET}/{READ_KEY}".encode()).decode(),
        "value": base64.b64encode(value).decode(),
    }
    http("POST", f"{url}{prefix}/kv/put", body=json.dumps(body).encode())


# --- kvsite servers --------------------------------------------------------------------


@contextlib.contextmanager
def running_server(
    processes: Processes, args: argparse.Namespace, server: ServerSpec, env: dict[str, str], workdir: Path
) -> Iterator[tuple[str, int]]:
    """kvsite under ``server``; yields its base URL and the pid of its master process."""
    port = free_port()
    fill = {"workers": str(server.workers), "threads": str(server.threads), "port": str(port)}
    command = [sys.executable, *(part.format(**fill) for part in SERVERS[server.kind])]
    log = workdir / f"{server.kind}-{server.workers}x{server.threads}-{free_port()}.log"
    process = processes.start(server, command, env=env, log=log, cwd=Path(server.checkout or REPO))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", process, log)
        yield base, process.pid
    finally:
        processes.stop(process)


# --- wrk ----------------------------------------------------------------------------------


def wrk(
    args: argparse.Namespace,
    label: str,
    url: str,
    mode: str,
    *,
    duration: float,
    extra_env: dict[str, str],
    service: Callable[[], list[int]] = list,
    threads: int | None = None,
) -> Result:
    """Run wrk with bench/wrk/kv.lua and parse the JSON line its ``done`` prints.

    ``service`` lists the processes whose CPU time the measurement is charged with;
    processes that start during the run (new database connections) are not counted.
    ``threads`` overrides ``--wrk-threads`` (the CAS mode needs one connection per thread).
    """
    env = {
        **os.environ,
        "KV_BENCH_MODE": mode,
        "KV_BENCH_KEYS": str(args.keys),
        "KV_BENCH_VALUE": "v" * args.value_size,
        **extra_env,
    }
    command = [
        "wrk", "--threads", str(threads or args.wrk_threads), "--connections", str(args.connections),
        "--duration", f"{duration:g}s", "--timeout", "10s", "--script", str(WRK_SCRIPT), url,
    ]  # fmt: skip
    load_before = os.getloadavg()[0]
    pids = service()
    service_before, wrk_before = cpu_seconds(pids), children_cpu_seconds()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    service_cpu, wrk_cpu = cpu_seconds(pids) - service_before, children_cpu_seconds() - wrk_before
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("KV_BENCH_RESULT ")), None)
    if line is None:
        sys.exit(f"wrk printed no result for {label}:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("KV_BENCH_RESULT "))
    errors = sum(data[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts", "status_errors"))
    return Result(
        label=label,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        requests=data["requests"],
        service_cpu_ms=1000 * service_cpu / max(data["requests"], 1),
        wrk_cpu_ms=1000 * wrk_cpu / max(data["requests"], 1),
        load_before=load_before,
    )


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_server(args: argparse.Namespace, server: ServerSpec, base: str, token: str, root_pid: int) -> ServerResults:
    """Warm up, then GET, PUT and the bare view, each for ``--duration`` seconds."""
    kv = {"KV_BENCH_TOKEN": token}

    def service() -> list[int]:
        return process_tree(root_pid) + database_backends(args)

    get_url, put_url = f"{base}{KEY_PATH}{READ_KEY}", f"{base}{KEY_PATH}"
    for mode, url in (("kv-get", get_url), ("kv-put", put_url), ("plain-get", f"{base}/health")):
        wrk(args, "warm-up", url, mode, duration=args.warmup, extra_env={**kv, "KV_BENCH_PATH": url_path(url)})
    name = str(server)
    results = ServerResults(
        server=name,
        get=wrk(args, f"kvsite GET ({name})", get_url, "kv-get", duration=args.duration,
                extra_env={**kv, "KV_BENCH_PATH": url_path(get_url)}, service=service),
        put=wrk(args, f"kvsite PUT ({name})", put_url, "kv-put", duration=args.duration,
                extra_env={**kv, "KV_BENCH_PATH": url_path(put_url)}, service=service),
        bare=wrk(args, f"bare /health ({name})", f"{base}/health", "plain-get", duration=args.duration,
                 extra_env={"KV_BENCH_PATH": "/health"}, service=service),
    )  # fmt: skip
    results.bare_db = wrk(args, f"bare /ready ({name})", f"{base}/ready", "plain-get", duration=args.duration,
                          extra_env={"KV_BENCH_PATH": "/ready"}, service=service)  # fmt: skip
    if not args.no_cas:
        results.cas = measure_cas(args, name, put_url, kv, service)
    return results


def measure_cas(
    args: argparse.Namespace, name: str, put_url: str, kv: dict[str, str], service: Callable[[], list[int]]
) -> Result:
    """PUT with If-Match of the key's current revision: one wrk thread per connection, one key per thread.

    wrk's ``response()`` hook is per thread, not per connection, so a thread with
    one connection is what lets each request carry the revision its previous
    answer returned. Each thread's first PUT is unconditional (it learns the revision).
    """
    cas = {**kv, "KV_BENCH_PATH": url_path(put_url)}
    wrk(args, "warm-up", put_url, "kv-cas", duration=args.warmup, extra_env=cas, threads=args.connections)
    return wrk(
        args, f"kvsite CAS update ({name})", put_url, "kv-cas", duration=args.duration,
        extra_env=cas, service=service, threads=args.connections,
    )  # fmt: skip


def measure_etcd(args: argparse.Namespace, url: str, prefix: str, pid: int) -> tuple[Result, Result]:
    put_env = {"KV_BENCH_PATH": f"{prefix}/kv/put"}
    get_env = {"KV_BENCH_PATH": f"{prefix}/kv/range"}

    def service() -> list[int]:
        return [pid]

    wrk(args, "warm-up", url, "etcd-put", duration=args.warmup, extra_env=put_env)
    get = wrk(args, "etcd GET (range)", url, "etcd-get", duration=args.duration, extra_env=get_env, service=service)
    put = wrk(args, "etcd PUT (put)", url, "etcd-put", duration=args.duration, extra_env=put_env, service=service)
    return get, put


def url_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


# --- Report -------------------------------------------------------------------------------


def ratio(ours: Result, theirs: Result | None) -> str:
    if theirs is None or theirs.rps == 0:
        return "-"
    return f"{ours.rps / theirs.rps:.2f}"


def print_report(args: argparse.Namespace, servers: list[ServerResults], etcd: tuple[Result, Result] | None) -> bool:
    """Print the table and the target checks; True if every server met the targets."""
    etcd_get, etcd_put = etcd if etcd else (None, None)
    print(
        f"\n{args.connections} connections, {args.duration:g} s per row, wrk {args.wrk_threads} threads, "
        f"{args.value_size}-byte values over {args.keys} keys, {os.cpu_count()} CPUs, "
        f"channel layer: {'Redis' if args.redis else 'in-memory'}, "
        f"load average before the run {args.load_before:.1f}"
        + (f", env {' '.join(args.env)}" if args.env else "")
        + "\n"
    )
    header = (
        f"| {'measurement':<36} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} "
        f"| {'CPU ms/req':>10} | {'CPU bound':>9} | {'ratio (req/s)':<22} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")

    def row(result: Result, note: str = "") -> None:
        print(
            f"| {result.label:<36} | {result.rps:>7.0f} | {result.p50_ms:>7.1f} | {result.p99_ms:>7.1f} "
            f"| {result.errors:>6} | {result.service_cpu_ms:>10.2f} | {result.bound():>9.0f} | {note:<22} |"
        )

    all_met = True
    for results in servers:
        row(
            results.get,
            f"/bare {ratio(results.get, results.bare)}, /db {ratio(results.get, results.bare_db)}, "
            f"/etcd {ratio(results.get, etcd_get)}",
        )
        row(results.put, f"/etcd {ratio(results.put, etcd_put)}")
        if results.cas is not None:
            row(results.cas, "If-Match, own key")
        row(results.bare)
        if results.bare_db is not None:
            row(results.bare_db, "one SELECT 1")
    if etcd_get and etcd_put:
        row(etcd_get)
        row(etcd_put)
    print(
        "\nCPU ms/req: server processes and their PostgreSQL backends (or etcd) per request. CPU bound: "
        f"requests/s that {os.cpu_count()} idle CPUs would allow at that cost plus wrk's own.\n"
    )
    for results in servers:
        checks = [
            (f"GET >= {TARGET_GET_RPS}", results.get.rps >= TARGET_GET_RPS),
            (f"GET >= {TARGET_GET_OF_BARE}x bare", results.get.rps >= TARGET_GET_OF_BARE * results.bare.rps),
            (f"PUT >= {TARGET_PUT_RPS}", results.put.rps >= TARGET_PUT_RPS),
            ("no errors", not (results.get.errors or results.put.errors or results.bare.errors)),
            ("no CAS conflicts", results.cas is None or not results.cas.errors),
        ]
        verdicts = ", ".join(f"{name}: {'ok' if met else 'MISSED'}" for name, met in checks)
        print(f"{results.server}: {verdicts}")
        all_met = all_met and all(met for _, met in checks)
    return all_met


def write_json(
    path: Path, args: argparse.Namespace, servers: list[ServerResults], etcd: tuple[Result, Result] | None
) -> None:
    """Every row as plain data, with the run's settings, for bench/report.py."""
    document = {
        "connections": args.connections,
        "duration": args.duration,
        "load_before": args.load_before,
        "servers": [asdict(results) for results in servers],
        "etcd": [asdict(result) for result in etcd] if etcd else None,
    }
    path.write_text(json.dumps(document, indent=2))


# --- Main ----------------------------------------------------------------------------------


def add_service_arguments(parser: argparse.ArgumentParser, *, redis: str = "auto") -> None:
    """The options of the services a bench starts (PostgreSQL, Redis, server environment, logs), for sibling scripts."""
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--redis", default=redis, help=f"as bench/kv_http.py's (default {redis})")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server log")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="gunicorn",
        help=f"comma-separated, measured one after another: {', '.join(SERVERS)}; each optionally "
        "with :WORKERS or :WORKERSxTHREADS, e.g. gunicorn:4,granian-wsgi:2x4 (default gunicorn)",
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes per server (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker for gthread/granian-wsgi")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per endpoint (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per written value (default 100)")
    parser.add_argument("--keys", type=int, default=1000, help="distinct keys the PUTs cycle through")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--database", default="kvsite_bench", help="dropped and recreated (default kvsite_bench)")
    parser.add_argument(
        "--redis",
        default="auto",
        help="REDIS_URL for the channel layer, as in production with several workers; 'auto' (default): "
        "redis://127.0.0.1:6379/0 if it answers, else the in-memory layer; 'none': the in-memory layer",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra server environment, repeatable"
    )
    parser.add_argument("--no-etcd", action="store_true", help="skip the etcd rows")
    parser.add_argument("--no-cas", action="store_true", help="skip the CAS-update row")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON (bench/report.py reads it)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server and etcd logs")
    args = parser.parse_args(argv)
    args.servers = [parse_server(parser, args, spec.strip()) for spec in args.server.split(",") if spec.strip()]
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        parser.error("--database must be a plain lower-case identifier")
    if args.redis == "auto":
        args.redis = "redis://127.0.0.1:6379/0" if port_open("127.0.0.1", 6379) else ""
    elif args.redis == "none":
        args.redis = ""
    return args


def parse_server(parser: argparse.ArgumentParser, args: argparse.Namespace, spec: str) -> ServerSpec:
    """``kind[:workers[xthreads]][@checkout]``, defaulting to --workers and --threads and this checkout."""
    match = re.fullmatch(r"([a-z-]+)(?::(\d+)(?:x(\d+))?)?(?:@(.+))?", spec)
    if match is None or match[1] not in SERVERS:
        parser.error(
            f"unknown server {spec!r}; choose from {', '.join(SERVERS)}, optionally :WORKERS or :WORKERSxTHREADS"
        )
    checkout = match[4] or ""
    if checkout and not (Path(checkout) / "manage.py").is_file():
        parser.error(f"{checkout} is not a kvsite checkout (no manage.py)")
    return ServerSpec(
        kind=match[1], workers=int(match[2] or args.workers), threads=int(match[3] or args.threads), checkout=checkout
    )


@contextlib.contextmanager
def bench_session(args: argparse.Namespace, *, prefix: str) -> Iterator[tuple["Processes", Path]]:
    """The children and scratch folder of one run: all stopped and removed afterwards."""
    args.load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    processes = Processes()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    # SIGTERM (a CI timeout, say) unwinds like Ctrl-C, so the finally below stops every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield processes, workdir
    finally:
        processes.stop_all()
        if args.keep_logs:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_tools()
    value = b"v" * args.value_size
    with bench_session(args, prefix="kv-bench-") as (processes, workdir):
        env = django_env(args)
        print(f"preparing database {args.database} ...", flush=True)
        token = prepare_database(args, env)
        servers: list[ServerResults] = []
        for server in args.servers:
            print(f"measuring {server} ...", flush=True)
            with running_server(processes, args, server, env, workdir) as (base, pid):
                seed_kvsite(base, token, value)
                servers.append(measure_server(args, server, base, token, pid))
        etcd = None
        if not args.no_etcd:
            print("measuring etcd ...", flush=True)
            with running_etcd(processes, workdir) as (url, pid):
                prefix = etcd_gateway(url)
                seed_etcd(url, prefix, value)
                etcd = measure_etcd(args, url, prefix, pid)
        met = print_report(args, servers, etcd)
        if args.json:
            write_json(Path(args.json), args, servers, etcd)
        return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
