"""The dashboard in a real browser (Debian's Chromium through Playwright) against a live ASGI server.

Each test signs in through the login form and works as a person would: clicks,
types, and watches the page change while other clients write through the REST
API. Screenshots of every page go to ``test-output/screenshots/``.

Skipped, with the reason, when Chromium or the playwright package is missing
(``apt-get install chromium``; ``pip install -r requirements-dev.txt``; never
``playwright install``: the browser is the system's).
"""

import base64
import importlib.util
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import override_settings

from buckets.configs import services as configs
from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access import apikeys
from kvsite.access.audit import audit_actor_system
from kvsite.models import ApiKey
from secrets_app import services as secrets
from tests.live_server import AsgiServer, running_asgi_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"
MASTER_KEY = "browser:" + base64.b64encode(bytes(range(32, 64))).decode()
PASSWORD = "pw-browser-1234567"
PLAINTEXT = "browser-PLAINTEXT-CANARY-93be"
TIMEOUT_MS = 10_000

_missing = []
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    _missing.append(f"Chromium ({CHROMIUM}; apt-get install chromium)")
if importlib.util.find_spec("playwright") is None:
    _missing.append("the playwright package (pip install -r requirements-dev.txt)")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(_missing), reason="browser tests need " + " and ".join(_missing)),
]

if not _missing:
    from playwright.sync_api import Browser, Page, expect, sync_playwright


@pytest.fixture(autouse=True)
def dashboard_settings() -> Iterator[None]:
    """This module's master key only, in place of the conftest's settings.

    The server runs in another process with the default password hashers, so the
    users made here must not get the conftest's fast (test-only) one.
    """
    with override_settings(KV_MASTER_KEYS=MASTER_KEY):
        yield


@pytest.fixture
def browser(transactional_db) -> Iterator["Browser"]:
    """Chromium for one test, closed before the test database is flushed.

    Playwright's sync API keeps an event loop in this thread while it runs, which
    Django takes for an async context; the ORM calls the test makes between
    browser steps are plain synchronous ones, so that check is lifted meanwhile.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
            # With that loop running, Django keeps the connections it opened meanwhile
            # apart from the thread's own; close them, or the test database cannot be dropped.
            connections.close_all()


@pytest.fixture(scope="module")
def server(django_db_setup) -> Iterator[AsgiServer]:
    """One server for the module; each test's data is flushed after it, sessions included."""
    with running_asgi_server(env={"KV_MASTER_KEYS": MASTER_KEY, "KV_API_KEY_CACHE_SECONDS": "0"}) as shared:
        yield shared


@pytest.fixture
def staff_user(transactional_db):
    return get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True)


@pytest.fixture
def open_page(browser, server, staff_user) -> Iterator[Callable[..., "Page"]]:
    """Signed-in pages (laptop size unless told otherwise), each in its own browser context."""
    contexts = []

    def open_(*, width: int = 1280, height: int = 860) -> "Page":
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.http_url + "/login")
        page.get_by_label("Username").fill("ops")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(server.http_url + "/")
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def api(server, transactional_db) -> httpx.Client:
    """Another client of the server: the REST API with an admin key."""
    token = apikeys.apikey_create(name="other-client", role="admin").token
    with httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        yield client


def shot(page: "Page", name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def mark_page(page: "Page") -> None:
    """Leave a marker in the window: it survives DOM updates, not a reload."""
    page.evaluate("window.__noReload = 'still here'")


def assert_not_reloaded(page: "Page") -> None:
    assert page.evaluate("window.__noReload") == "still here"


def system_buckets(api: httpx.Client) -> None:
    """A config document and a secret, written by another client: their SYS_ buckets must never show."""
    document = {"beta": False, "newCheckout": True, "theme": "dark"}
    assert api.post("/api/v1/config/flags", json=document).status_code == 200
    secret = {"name": "db/password", "value": PLAINTEXT, "description": "Primary database"}
    response = api.post("/api/v1/secrets", json=secret, headers={"X-Ironflow-Environment-ID": "prod"})
    assert response.status_code == 201, response.text


def put_key(api: httpx.Client, bucket: str, key: str, value: bytes) -> int:
    """Write through the REST API (the server publishes the change to watchers)."""
    response = api.put(f"/api/v1/kv/buckets/{bucket}/keys/{key}", content=value)
    assert response.status_code == 200, response.text
    return response.json()["revision"]


# --- Tests --------------------------------------------------------------------------------


def test_sign_in_is_required_and_the_login_page_works(browser, server, staff_user):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(server.http_url + "/audit")
    expect(page).to_have_url(re.compile(r"/login\?next=/audit$"))
    shot(page, "01-login")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(server.http_url + "/audit")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    context.close()


def test_too_many_wrong_passwords_pause_sign_in_and_the_page_says_so(browser, server, transactional_db):
    # A username of its own: the module's server keeps its sign-in counters between tests.
    get_user_model().objects.create_user("locked-out", password=PASSWORD, is_staff=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.http_url + "/login")

    for _ in range(5):
        page.get_by_label("Username").fill("locked-out")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()

    assert answer.value.status == 429
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Too many failed sign-in attempts for this username.")
    expect(alert).to_contain_text(re.compile(r"Wait \d+ seconds, then try again\."))
    expect(page.get_by_label("Username")).to_have_value("locked-out")
    expect(page).to_have_url(server.http_url + "/login")
    shot(page, "01b-login-throttled")
    context.close()


def test_create_a_bucket_and_never_see_a_system_bucket(open_page, server, api):
    system_buckets(api)
    page = open_page()
    shot(page, "02-buckets-empty")

    page.get_by_label("Name").fill("settings")
    page.get_by_label("Description").fill("App settings")
    page.get_by_label("TTL (seconds)").fill("3600")
    page.get_by_label("History").fill("5")
    page.get_by_label("Max value size (bytes)").fill("4096")
    page.get_by_role("button", name="Create bucket").click()

    expect(page).to_have_url(server.http_url + "/buckets/settings")
    expect(page.get_by_role("status").first).to_contain_text("Bucket settings created")
    bucket = store.bucket_get(name=app_bucket("settings"))
    assert (bucket.ttl_seconds, bucket.history, bucket.max_value_size) == (3600, 5, 4096)

    page.goto(server.http_url + "/")
    expect(page.locator("#bucket-table tbody tr")).to_have_count(1)
    shot(page, "03-buckets")
    for url in ("/", "/?q=SYS", "/?q=config", "/?q=secrets", "/config", "/secrets", "/audit", "/buckets/settings"):
        page.goto(server.http_url + url)
        assert "SYS_" not in page.content(), url
    # Searching keys for a system bucket's name finds nothing either.
    page.goto(server.http_url + "/buckets/settings?filter=SYS_config_default")
    expect(page.locator("#keys tbody tr")).to_have_count(0)
    response = page.goto(server.http_url + "/buckets/SYS_config_default")
    assert response.status == 404


def test_rows_appear_change_and_disappear_live(open_page, server, api, make_bucket):
    make_bucket("live", history=3)
    put_key(api, "live", "a.first", b"1")
    page = open_page()
    page.goto(server.http_url + "/buckets/live")
    expect(page.locator("#live-status")).to_have_text("Live")
    mark_page(page)

    # Given the bucket page is open, when another client writes a key through the REST API,
    assert api.put("/api/v1/kv/buckets/live/keys/b.second", content=b'{"hello": "world"}').status_code == 200
    # then its row appears without a reload, in key order.
    row = page.locator('tr[data-key="b.second"]')
    expect(row).to_be_visible()
    expect(row.locator('[data-col="size"]')).to_have_text("18")
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)") == ["a.first", "b.second"]

    api.put("/api/v1/kv/buckets/live/keys/a.first", content=b"12345")
    expect(page.locator('tr[data-key="a.first"] [data-col="revision"]')).to_have_text("3")
    expect(page.locator('tr[data-key="a.first"] [data-col="size"]')).to_have_text("5")
    shot(page, "04-bucket-live")

    api.delete("/api/v1/kv/buckets/live/keys/b.second")
    expect(page.locator('tr[data-key="b.second"]')).to_have_count(0)
    assert_not_reloaded(page)

    # The filter box narrows the list and the watch follows it.
    page.get_by_label("Filter keys").fill("c.*")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"filter=c\.\*"))
    expect(page.locator("#keys tbody tr")).to_have_count(0)
    expect(page.locator("#live-status")).to_have_text("Live")
    api.put("/api/v1/kv/buckets/live/keys/a.third", content=b"not shown")
    api.put("/api/v1/kv/buckets/live/keys/c.shown", content=b"shown")
    expect(page.locator('tr[data-key="c.shown"]')).to_be_visible()
    expect(page.locator('tr[data-key="a.third"]')).to_have_count(0)
    assert_not_reloaded(page)


def test_editing_a_key_that_someone_else_writes_shows_the_conflict(open_page, server, api, make_bucket):
    make_bucket("cas", history=5)
    put_key(api, "cas", "theme", b'{"mode": "dark"}')
    page = open_page()
    page.goto(server.http_url + "/buckets/cas/keys/theme")
    expect(page.locator("pre.value")).to_contain_text('"mode": "dark"')
    shot(page, "05-key")
    expect(page.locator("#live-status")).to_have_text("Live")

    # While I edit revision 1, another client writes revision 2.
    page.get_by_label("New value").fill('{"mode": "light"}')
    api.put("/api/v1/kv/buckets/cas/keys/theme", content=b'{"mode": "solarized"}')
    expect(page.locator("#key-changed")).to_be_visible()
    expect(page.locator("#key-changed")).to_contain_text("revision 2")

    page.get_by_role("button", name="Save", exact=True).click()
    conflict = page.locator(".conflict")
    expect(conflict).to_contain_text("Someone else wrote this key meanwhile")
    expect(conflict).to_contain_text('"mode": "solarized"')
    expect(conflict).to_contain_text('"mode": "light"')
    shot(page, "06-key-conflict")
    assert bytes(store.entry_get(bucket=app_bucket("cas"), key="theme").value) == b'{"mode": "solarized"}'

    # Saving again is a deliberate overwrite of revision 2.
    page.get_by_role("button", name="Save mine over revision 2").click()
    expect(page.get_by_role("status").first).to_contain_text("as revision 3")
    assert bytes(store.entry_get(bucket=app_bucket("cas"), key="theme").value) == b'{"mode": "light"}'

    # History and a diff between two revisions.
    page.get_by_role("button", name="Compare revisions").click()
    expect(page.locator("pre.diff")).to_contain_text('+  "mode": "light"')
    shot(page, "07-key-diff")


def test_toggle_a_feature_flag_and_follow_other_writers(open_page, server, api):
    system_buckets(api)
    page = open_page()
    page.goto(server.http_url + "/config")
    shot(page, "08-config")
    page.get_by_role("link", name="flags").click()
    mark_page(page)

    beta = page.get_by_role("switch", name="beta")
    expect(beta).to_have_attribute("aria-checked", "false")
    beta.click()
    expect(page.get_by_role("switch", name="beta")).to_have_attribute("aria-checked", "true")
    assert configs.config_get(environment="default", name="flags").data["beta"] is True
    # The untouched editor follows the new revision, so saving it later is no conflict.
    expect(page.locator('#config-editor input[name="revision"]')).to_have_value("2")

    # Someone else turns another flag off; the page follows without a reload.
    response = api.patch("/api/v1/config/flags", json={"newCheckout": False})
    assert response.status_code == 200, response.text
    expect(page.get_by_role("switch", name="newCheckout")).to_have_attribute("aria-checked", "false")
    expect(page.locator("#config-live [data-live-revision]")).to_have_text("3")
    # The editor takes the new revision once the swap settles; editing before then would
    # (rightly) keep revision 2 and make the save below a conflict.
    expect(page.locator('#config-editor input[name="revision"]')).to_have_value("3")
    assert_not_reloaded(page)

    # The editor refuses invalid JSON before sending it.
    editor = page.get_by_label("Document JSON")
    editor.fill('{"beta": tru')
    expect(page.locator("#config-json-status")).to_contain_text("Not valid JSON")
    page.get_by_role("button", name="Save", exact=True).click()
    assert_not_reloaded(page)
    assert configs.config_get(environment="default", name="flags").revision == 3
    editor.fill('{"beta": true, "newCheckout": true, "theme": "light"}')
    expect(page.locator("#config-json-status")).to_have_text("Valid JSON")
    shot(page, "09-config-document")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("as revision 4")
    assert configs.config_get(environment="default", name="flags").data["theme"] == "light"


def test_reveal_a_secret_and_find_the_audit_record(open_page, server, api):
    system_buckets(api)
    page = open_page()
    page.goto(server.http_url + "/secrets?env=prod")
    row = page.locator('tr[data-secret="db/password"]')
    expect(row).to_contain_text("••••••••")
    assert PLAINTEXT not in page.content()
    shot(page, "10-secrets")

    row.get_by_role("button", name="Reveal db/password").click()
    expect(row.locator(".revealed-text")).to_have_text(PLAINTEXT)
    shot(page, "11-secret-revealed")

    page.goto(server.http_url + "/audit")
    page.get_by_label("Action").select_option("REVEAL")
    page.get_by_role("button", name="Apply filters").click()
    record = page.locator("#audit-table tbody tr").first
    expect(record).to_contain_text("REVEAL")
    expect(record).to_contain_text("ops")
    expect(record).to_contain_text("secrets:prod")
    expect(record).to_contain_text("db/password")
    shot(page, "12-audit")

    # Rotate, then roll back, from the secret's own page.
    page.goto(server.http_url + "/secrets/prod/db/password")
    page.get_by_label("New value").fill("rotated-value")
    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("status").first).to_contain_text("revision 2 is the current value")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to this").click()
    expect(page.get_by_role("status").first).to_contain_text("now revision 3")
    shot(page, "13-secret")
    revealed = secrets.secret_reveal(environment="prod", name="db/password", actor=audit_actor_system(name="t"))
    assert revealed.value == PLAINTEXT


def test_create_and_revoke_an_api_key(open_page, server):
    page = open_page()
    page.goto(server.http_url + "/api-keys")
    page.get_by_label("Name").fill("deploy-bot")
    page.get_by_label("Role").select_option("writer")
    page.get_by_role("button", name="Create key").click()

    token = page.locator("#issued-token").input_value()
    assert token.startswith("kvs_")
    expect(page.locator("#apikey-table")).to_contain_text(token[:12])
    page.get_by_role("button", name="Copy").click()
    shot(page, "14-api-key-created")
    assert httpx.get(server.http_url + "/api/v1/kv/buckets", headers={"Authorization": f"Bearer {token}"}).is_success

    page.goto(server.http_url + "/api-keys")
    assert token not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke deploy-bot").click()
    expect(page.get_by_role("status").first).to_contain_text("revoked")
    expect(page.locator("#apikey-table")).to_contain_text("revoked")
    shot(page, "15-api-keys")
    assert ApiKey.objects.get(name="deploy-bot").revoked_at is not None
    response = httpx.get(server.http_url + "/api/v1/kv/buckets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_pages_fit_a_phone_screen(open_page, server, api, make_bucket):
    system_buckets(api)
    make_bucket("phone", description="Seen on a small screen")
    put_key(api, "phone", "user.42.profile", b'{"name": "Ada", "langs": ["en"]}')
    page = open_page(width=390, height=844)
    for name, url in [
        ("buckets", "/"),
        ("bucket", "/buckets/phone"),
        ("key", "/buckets/phone/keys/user.42.profile"),
        ("config", "/config/default/flags"),
        ("secrets", "/secrets?env=prod"),
        ("audit", "/audit"),
        ("api-keys", "/api-keys"),
    ]:
        page.goto(server.http_url + url)
        # Nothing may make the whole page scroll sideways (wide tables scroll inside their box).
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{url} is {overflow}px wider than the phone screen"
        shot(page, f"phone-{name}")


def test_keyboard_only_navigation_reaches_the_pages(open_page, server):
    page = open_page()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Buckets")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.http_url + "/config")
