"""``make run`` (``manage.py runlocal``) as a person meets it: a real process on a fresh SQLite file.

It must end with one block that says where the dashboard and the API are and how to get
in, with credentials that work, and print each development notice once.
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.live_server import REPO, free_port

pytestmark = pytest.mark.e2e

RULE = "─" * 78


@contextmanager
def make_run(tmp_path: Path, port: int) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``manage.py runlocal`` as ``make run`` starts it, on a database and key file of the test's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_URL", "KV_"))}
    env.update(
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        KV_MASTER_KEY_FILE=str(tmp_path / "master.key"),
    )
    log = tmp_path / f"run-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runlocal", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield process, log
    finally:
        process.terminate()
        process.wait(timeout=15)


def welcome_block(log: Path, *, timeout: float = 60) -> tuple[str, str]:
    """(everything printed, the block) once the block is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if text.count(RULE) >= 2:
            return text, text[text.index(RULE) : text.rindex(RULE) + len(RULE)]
        time.sleep(0.1)
    raise AssertionError(f"no welcome block within {timeout} s:\n{log.read_text()}")


def test_the_first_run_ends_with_one_block_whose_credentials_work(tmp_path: Path) -> None:
    port = free_port()
    with make_run(tmp_path, port) as (_, log):
        printed, block = welcome_block(log)
        url = f"http://127.0.0.1:{port}"
        password = re.search(r"Sign in +admin / (\S+) +\(shown once\)", block)
        token = re.search(r"API key +(kvs_\S+) +\(admin, shown once\)", block)

        # The block names the dashboard and the API docs, and the credentials in it work
        assert f"Dashboard   {url}/" in block and f"{url}/api/v1/kv/swagger-ui" in block
        assert password and token, block
        api = httpx.get(f"{url}/api/v1/kv/buckets", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert api.status_code == 200
        with httpx.Client(base_url=url) as browser:
            form = browser.get("/login")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            signed_in = browser.post(
                "/login", data={"username": "admin", "password": password.group(1), "csrfmiddlewaretoken": csrf}
            )
            assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/")
            assert browser.get("/").status_code == 200

    # Each development notice once, before the block; no migration chatter, no traceback lines
    assert printed.count("development secret key") == 1
    assert printed.count("GENERATED a new DEVELOPMENT master key") == 1
    assert printed.index("DEVELOPMENT master key") < printed.index(RULE)
    assert "Applying " not in printed and "warnings.warn" not in printed and "!!!!" not in printed


def test_a_later_run_says_the_credentials_exist_and_shows_no_secret(tmp_path: Path) -> None:
    with make_run(tmp_path, free_port()) as (_, log):
        welcome_block(log)
    with make_run(tmp_path, free_port()) as (_, log):
        _, block = welcome_block(log)

    assert "shown once" not in block and "kvs_" not in block.replace("kvs_…", "")
    assert "python manage.py changepassword admin" in block
    assert "python manage.py createapikey NAME --role admin" in block
