"""Real servers for end-to-end tests, on the test database, on each path users serve kvsite by.

``serving`` picks the path (``SERVING_PATHS``):

- ``"development"``: ``uvicorn kvsite.asgi:application``, debug on, no Redis (``make run``);
- ``"production"``: what ``make serve`` runs, gunicorn managing uvicorn workers on
  ``kvsite.asgi:application`` with debug off and Redis, so HTTP goes through a2wsgi;
- ``"wsgi"``: ``granian --interface wsgi kvsite.wsgi:application``, debug off and Redis,
  the README's fastest HTTP setup (no WebSockets on that port);
- ``"uvicorn"``: the README's other production app server, ``uvicorn kvsite.asgi:application
  --workers N`` with debug off and Redis, without ``make serve``'s extra steps. It serves
  the same application as ``"production"``'s workers, so it is not in ``SERVING_PATHS``,
  the paths every request-body test runs on; the dashboard's production test uses it.

Each server is a subprocess pointed at pytest-django's test database (a file on
SQLite, ``test_kvsite_<pid>`` on PostgreSQL), so what a test writes through the
ORM the server reads, and the other way round. Tests that use one need
``@pytest.mark.django_db(transaction=True)``: data must be committed to be seen
across processes.

Use it in a test module with::

    from tests.live_server import asgi_server_factory  # noqa: F401  (pytest fixture)

or list ``"tests.live_server"`` in the root conftest's ``pytest_plugins``. For a
server shared by a module, call ``running_asgi_server()`` from a module-scoped
fixture that depends on ``django_db_setup``.
"""

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
# One channel-layer prefix per test run, so parallel runs on one Redis never see each other's events.
RUN_CHANNEL_PREFIX = f"kvtest-{os.getpid()}-{secrets.token_hex(4)}."
SERVING_PATHS = ("development", "production", "wsgi")


def server_database_url() -> str:
    """DATABASE_URL of the database this test process uses (the test database once it exists)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    if connection.vendor != "postgresql":
        raise RuntimeError(f"no DATABASE_URL form known for {connection.vendor}")
    credentials = quote(settings.get("USER") or "", safe="")
    if settings.get("PASSWORD"):
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings.get("HOST") or ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{settings['NAME']}"


def server_redis_url() -> str:
    return os.environ.get("KV_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


def redis_available(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AsgiServer:
    port: int
    process: subprocess.Popen
    log_path: Path
    serving: str = "development"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server and every worker it started (its own process group), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        # Workers of a manager that died first are still in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()


def server_environment(*, env: Mapping[str, str] | None = None, redis_url: str | None = None) -> dict[str, str]:
    """The environment of a server process (or a management command) on the test database.

    ``redis_url`` switches to the Redis channel layer and cache, with this run's
    channel prefix; ``env`` adds or overrides variables (``DATABASE_URL``, ``KV_WATCH_*``...).
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "KV_CHANNEL_LAYER_PREFIX"))
    }
    server_env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "kvsite.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": server_database_url(),
        # ASGI runs each request in a thread of its own: persistent connections would pile up.
        "DJANGO_CONN_MAX_AGE": "0",
        "PYTHONWARNINGS": "ignore",
    }
    if redis_url:
        server_env["REDIS_URL"] = redis_url
        server_env["KV_CHANNEL_LAYER_PREFIX"] = RUN_CHANNEL_PREFIX
    server_env.update(env or {})
    return server_env


def manage(*arguments: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``manage.py`` in a process of its own with ``server_environment(env=env)``; return its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=REPO,
        env=server_environment(env=env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def serving_command(serving: str, port: int) -> list[str]:
    """The command line of a server on ``port`` for the serving path ``serving`` (as the Makefile and README run it)."""
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if serving == "development":
        return [sys.executable, "-m", "uvicorn", "kvsite.asgi:application", *bind, "--lifespan", "off",
                "--log-level", "warning"]  # fmt: skip
    if serving == "production":
        return [sys.executable, "-m", "gunicorn", "kvsite.asgi:application",
                "--worker-class", "uvicorn.workers.UvicornWorker", "--workers", "1",
                "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10", "--log-level", "warning"]  # fmt: skip
    if serving == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "kvsite.asgi:application", *bind, "--workers", "2",
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if serving == "wsgi":
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "kvsite.wsgi:application", *bind,
                "--workers", "1", "--blocking-threads", "4", "--no-ws", "--log-level", "warning"]  # fmt: skip
    raise ValueError(f"unknown serving path {serving!r}; one of {(*SERVING_PATHS, 'uvicorn')}")


def production_environment(*, redis_url: str | None = None) -> dict[str, str]:
    """What ``make serve`` exports: debug off, real secrets, Redis, a Prometheus multiprocess directory."""
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(48)).decode(),
        # The test process's own keys, so secrets it seals the server can open.
        "KV_MASTER_KEYS": settings.KV_MASTER_KEYS,
        "DJANGO_SECURE_COOKIES": "0",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="kvsite-prometheus-"),
        "REDIS_URL": redis_url or server_redis_url(),
    }


def start_asgi_server(
    *,
    env: Mapping[str, str] | None = None,
    redis_url: str | None = None,
    serving: str = "development",
    timeout: float = 30,
) -> AsgiServer:
    """Start a server on a free port against the test database; return once ``/health`` answers.

    ``serving`` is one of ``SERVING_PATHS`` (``"production"`` and ``"wsgi"`` run with
    ``production_environment``); ``env`` adds to ``server_environment``:
    ``env={"DATABASE_URL": ...}`` points it at another database.
    """
    if serving != "development":
        redis_url = redis_url or server_redis_url()
        env = {**production_environment(redis_url=redis_url), **(env or {})}
    server_env = server_environment(env=env, redis_url=redis_url)
    for _attempt in range(3):
        port = free_port()
        log_file = tempfile.NamedTemporaryFile(prefix=f"kvsite-{serving}-", suffix=".log", delete=False)  # noqa: SIM115
        process = subprocess.Popen(
            serving_command(serving, port),
            cwd=REPO,
            env=server_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # A group of its own, so a manager's workers are stopped (or killed) with it.
            start_new_session=True,
        )
        log_file.close()
        server = AsgiServer(port=port, process=process, log_path=Path(log_file.name), serving=serving)
        if _wait_healthy(server, timeout=timeout):
            return server
        log = server.log()
        server.stop()
        # Another process may have taken the port between probe and bind: try another one.
        if "address already in use" not in log.lower():
            raise RuntimeError(f"{serving} server did not become healthy:\n{log}")
    raise RuntimeError(f"{serving} server found no free port")


def _wait_healthy(server: AsgiServer, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(server.http_url + "/health", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_asgi_server(**options) -> Iterator[AsgiServer]:
    server = start_asgi_server(**options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def asgi_server_factory(transactional_db) -> Iterator[Callable[..., AsgiServer]]:
    """Start servers with ``start_asgi_server``'s options; all are stopped after the test."""
    servers: list[AsgiServer] = []

    def start(**options) -> AsgiServer:
        server = start_asgi_server(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url(transactional_db) -> str:
    """The Redis URL for tests (``KV_TEST_REDIS_URL``); skips the test when Redis does not answer."""
    url = server_redis_url()
    if not redis_available(url):
        pytest.skip(f"needs Redis at {url} (set KV_TEST_REDIS_URL)")
    return url


def ws_connect(
    server: AsgiServer, path: str, *, token: str | None = None, headers: Mapping[str, str] | None = None, **options
) -> connect:
    """A WebSocket client for ``path`` on ``server``, as a browser on the same origin or an API client.

    Sends the server's own origin, as a page of the site would (the origin
    validator refuses any other), and, with ``token``, ``Authorization: Bearer``.
    """
    extra = dict(headers or {})
    if token is not None:
        extra["Authorization"] = f"Bearer {token}"
    options.setdefault("open_timeout", 10)
    return connect(server.ws_url + path, origin=server.http_url, additional_headers=extra, **options)
