"""The dashboard keeps data exactly, in a real browser (issue 17's data bugs).

Each test drives Debian's Chromium through Playwright against a live server, as
``test_browser.py`` does (its fixtures are reused): what a person does on a page,
then what the database holds, byte for byte; and the pages' scripts, with debug off,
on the servers the README documents for production.
"""

import re
from pathlib import Path

import httpx
import pytest

from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access import apikeys
from tests import live_server
from tests.live_server import REPO, manage, production_environment, running_asgi_server

from . import test_browser as browser_tests
from .test_browser import PASSWORD, TIMEOUT_MS, assert_not_reloaded, mark_page, shot

# Fixtures (pytest finds them by these names): the browser tests' Chromium, users and settings; Redis.
browser = browser_tests.browser
staff_user = browser_tests.staff_user
dashboard_settings = browser_tests.dashboard_settings
redis_url = live_server.redis_url
MISSING = browser_tests._missing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(MISSING), reason="browser tests need " + " and ".join(MISSING)),
]

if not MISSING:
    from playwright.sync_api import expect


# --- Production serving --------------------------------------------------------------------------

SCRIPTS = ("/static/vendor/htmx.min.js", "/static/dashboard/dashboard.js", "/static/dashboard/live.js")


@pytest.mark.parametrize("serving", ["uvicorn", "production", "wsgi"])
def test_the_dashboard_has_its_scripts_with_debug_off(browser, staff_user, redis_url, serving, tmp_path: Path):
    # Served as the README documents for production: migrate, then the app server, debug off;
    # no collectstatic (an empty STATIC_ROOT, whatever this checkout holds).
    environment = {
        **production_environment(redis_url=redis_url),
        "DJANGO_STATIC_ROOT": str(tmp_path / "never-collected"),
    }
    manage("migrate", "--noinput", env=environment)
    assert not (tmp_path / "never-collected").exists()
    with running_asgi_server(serving=serving, env=environment, redis_url=redis_url) as live:
        for script in SCRIPTS:
            response = httpx.get(live.http_url + script)
            assert response.status_code == 200, (serving, script, response.status_code)
            assert "javascript" in response.headers["content-type"]
            assert response.content == (REPO / "static" / script.removeprefix("/static/")).read_bytes()

        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(live.http_url + "/login")
        page.get_by_label("Username").fill("ops")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live.http_url + "/")
        assert page.evaluate("typeof window.htmx") == "object"

        # htmx filters the key list in place; live.js follows the bucket (WebSockets: not on granian's WSGI port).
        store.bucket_create(name=app_bucket("prod"))
        store.entry_put(bucket=app_bucket("prod"), key="a.one", value=b"1")
        page.goto(live.http_url + "/buckets/prod")
        mark_page(page)
        page.get_by_label("Filter keys").fill("a.*")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"filter=a\.\*"))
        expect(page.locator("#keys tbody tr")).to_have_count(1)
        assert_not_reloaded(page)
        if serving != "wsgi":
            expect(page.locator("#live-status")).to_have_text("Live")
            token = apikeys.apikey_create(name=f"prod-{serving}", role="admin").token
            headers = {"Authorization": f"Bearer {token}"}
            response = httpx.put(live.http_url + "/api/v1/kv/buckets/prod/keys/a.two", content=b"2", headers=headers)
            assert response.status_code == 200, response.text
            expect(page.locator('tr[data-key="a.two"]')).to_be_visible()

        # dashboard.js formats the config editor.
        page.goto(live.http_url + "/config")
        page.get_by_label("Name").fill("prod-doc")
        page.get_by_role("button", name="Create document").click()
        editor = page.get_by_label("Document JSON")
        editor.fill('{"a":1}')
        page.get_by_role("button", name="Format").click()
        expect(editor).to_have_value('{\n  "a": 1\n}')
        shot(page, f"data-05-production-{serving}")
        context.close()
