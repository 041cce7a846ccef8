"""A throw-away PostgreSQL cluster for fault tests: its own data directory and port, stopped and started at will.

The shared server (127.0.0.1:5432) serves other tests and sessions, so a test that
takes PostgreSQL down does it to one of these instead. The cluster runs as the
``postgres`` system user when the tests run as root (initdb and postgres refuse
root), with trust authentication on 127.0.0.1 only and fsync off: it lives for one
test and no machine crash has to be survived.

Use it in a test module with::

    from tests.postgres_cluster import postgres_cluster  # noqa: F401  (pytest fixture)
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.live_server import free_port, manage

RUN_AS = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, else None."""
    found = [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [path for path in found if (path / "pg_ctl").exists()]

    def version(path: Path) -> list[int]:
        return [int(part) for part in path.parent.name.split(".") if part.isdigit()]

    return max(found, key=version, default=None)


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )

    def _pg_ctl(self, *arguments: str) -> subprocess.CompletedProcess:
        return self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *arguments)

    def init(self) -> None:
        result = self._run(
            str(self.bin_dir / "initdb"),
            *("-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--no-sync"),
            *("--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        """Start the server on ``port`` and wait until it accepts connections."""
        options = f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        result = self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_path), "-o", options)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{self.log()}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` drops every connection at once, like a crash (WAL replay on start)."""
        result = self._pg_ctl("stop", "-w", "-t", "30", "-m", mode)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{result.stdout}\n{result.stderr}")

    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_kvsite_database(self, name: str = "kvsite") -> str:
        """Create database ``name`` and migrate kvsite's schema into it; return its URL."""
        url = self.create_database(name)
        manage("migrate", "--noinput", "--verbosity", "0", env={"DATABASE_URL": url})
        return url


def _owned_by_run_as(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def running_postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb a cluster into a fresh directory, start it on a free port; stop and remove it afterwards."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb")
    # Under /tmp, not pytest's tmp_path: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="kvsite-pg-"))
    try:
        _owned_by_run_as(root)
        cluster = PostgresCluster(bin_dir=bin_dir, root=root, port=free_port())
        cluster.init()
        for _attempt in range(3):
            try:
                cluster.start()
                break
            except RuntimeError:
                # Another process may have taken the port between probe and bind.
                if "could not bind" not in cluster.log().lower():
                    raise
                cluster.port = free_port()
        else:
            raise RuntimeError(f"postgres found no free port:\n{cluster.log()}")
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster of this test's own; skips when the binaries or the user are missing."""
    if postgres_bin_dir() is None:
        pytest.skip("needs PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            pytest.skip(f"running as root needs a '{RUN_AS}' user to run PostgreSQL as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root needs runuser")
    with running_postgres_cluster() as cluster:
        yield cluster
