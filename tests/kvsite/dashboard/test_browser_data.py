"""The dashboard keeps data exactly, in a real browser (issue 17's data bugs).

Each test drives Debian's Chromium through Playwright against a live server, as
``test_browser.py`` does (its fixtures are reused): what a person does on a page,
then what the database holds, byte for byte. The browser is the point: its HTML
parser turns NUL into U+FFFD and lone CRs into LFs, a submitted text box sends
CRLF line breaks, and a JS number is a double. The last test checks the pages'
scripts with debug off, on the servers the README documents for production.
"""

import re
from pathlib import Path

import httpx
import pytest

from buckets.configs import services as configs
from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access import apikeys
from kvsite.models import ApiKey
from tests import live_server
from tests.live_server import REPO, manage, production_environment, running_asgi_server

from . import test_browser as browser_tests
from .test_browser import PASSWORD, TIMEOUT_MS, assert_not_reloaded, mark_page, put_key, shot

# Fixtures (pytest finds them by these names): the browser tests' Chromium, users and settings; Redis.
browser = browser_tests.browser
staff_user = browser_tests.staff_user
dashboard_settings = browser_tests.dashboard_settings
server = browser_tests.server
open_page = browser_tests.open_page
api = browser_tests.api
redis_url = live_server.redis_url
MISSING = browser_tests._missing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(MISSING), reason="browser tests need " + " and ".join(MISSING)),
]

if not MISSING:
    from playwright.sync_api import Page, expect

BIG_DOCUMENT = b'{"orderId": 12345678901234567890, "price": 1.10, "beta": false}'
BIG_INTEGER = "12345678901234567890"


def stored(bucket: str, key: str) -> tuple[bytes, int]:
    entry = store.entry_get(bucket=app_bucket(bucket), key=key)
    return bytes(entry.value), entry.revision


def press_save(page: "Page") -> str:
    """Press the edit form's Save and return the first status message of the page it leads to."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    return page.get_by_role("status").first.inner_text()


# --- Key values ------------------------------------------------------------------------------


def test_a_binary_value_is_edited_as_hex_and_a_no_op_save_writes_nothing(open_page, server, api, make_bucket):
    make_bucket("bin", history=5)
    value = bytes(range(64))
    put_key(api, "bin", "blob", value)
    page = open_page()
    page.goto(server.http_url + "/buckets/bin/keys/blob")

    # Saving without touching anything keeps the value and writes no revision.
    message = press_save(page)
    assert stored("bin", "blob") == (value, 1)
    assert message == "No changes — nothing saved."

    # The edit box holds the bytes as hex, and says why.
    expect(page.get_by_label("Encoding")).to_have_value("hex")
    expect(page.locator("#edit-form")).to_contain_text("a text box would change this value")
    expect(page.locator("pre.value")).to_have_attribute("aria-label", "Value as hex")
    shot(page, "data-01-binary-as-hex")

    # An edit in hex is stored as exactly those bytes.
    editor = page.get_by_label("New value")
    editor.fill(editor.input_value() + " ff")
    message = press_save(page)
    assert message == "Saved blob as revision 2."
    assert stored("bin", "blob") == (value + b"\xff", 2)


def test_line_endings_are_kept_byte_for_byte(open_page, server, api, make_bucket):
    make_bucket("text", history=5)
    mixed = b"line1\r\nline2\n\ttab  \n"
    put_key(api, "text", "mixed", mixed)
    page = open_page()

    # Mixed line endings cannot go through a text box: the value is offered as hex, and an untouched Save keeps it.
    page.goto(server.http_url + "/buckets/text/keys/mixed")
    assert press_save(page) == "No changes — nothing saved."
    assert stored("text", "mixed") == (mixed, 1)
    expect(page.get_by_label("Encoding")).to_have_value("hex")
    expect(page.locator("#edit-form")).to_contain_text("CRLF and LF")

    # A CRLF text is edited as text; the browser submits CRLF, the server keeps the value's CRLF.
    put_key(api, "text", "crlf", b"a\r\nb\r\n")
    page.goto(server.http_url + "/buckets/text/keys/crlf")
    expect(page.get_by_label("Encoding")).to_have_value("text")
    assert press_save(page) == "No changes — nothing saved."
    page.get_by_label("New value").fill("a\nb\nc\n")
    assert press_save(page) == "Saved crlf as revision 3."
    assert stored("text", "crlf") == (b"a\r\nb\r\nc\r\n", 3)

    # An LF text stays LF.
    put_key(api, "text", "lf", b"x\ny\n")
    page.goto(server.http_url + "/buckets/text/keys/lf")
    page.get_by_label("New value").fill("x\ny\nz\n")
    assert press_save(page) == "Saved lf as revision 5."
    assert stored("text", "lf") == (b"x\ny\nz\n", 5)
    shot(page, "data-02-line-endings")


def test_control_characters_other_than_nul_and_cr_round_trip_as_text(open_page, server, api, make_bucket):
    make_bucket("ctl", history=5)
    value = "tab\tvt\x0bff\x0cesc\x1bunit\x1fdel\x7fnel\u0085ls\u2028bom\ufeffend\n".encode()
    put_key(api, "ctl", "odd", value)
    page = open_page()
    page.goto(server.http_url + "/buckets/ctl/keys/odd")
    expect(page.get_by_label("Encoding")).to_have_value("text")

    assert press_save(page) == "No changes — nothing saved."
    editor = page.get_by_label("New value")
    editor.evaluate("(box) => { box.value = box.value + '!'; }")
    press_save(page)

    assert stored("ctl", "odd") == (value + b"!", 2)


# --- Config documents ----------------------------------------------------------------------------


def put_big_document(api: httpx.Client, name: str) -> None:
    headers = {"Content-Type": "application/json"}
    response = api.post(f"/api/v1/config/{name}", content=BIG_DOCUMENT, headers=headers)
    assert response.status_code == 200, response.text


def test_format_keeps_every_number_as_written(open_page, server, api):
    put_big_document(api, "orders")
    page = open_page()
    page.goto(server.http_url + "/config/default/orders")
    editor = page.get_by_label("Document JSON")
    expect(editor).to_have_value(re.compile(BIG_INTEGER))

    # Format re-indents the text the person typed; it never rewrites a number.
    editor.fill('{"orderId": 12345678901234567890, "price": 1.10, "tiny": 1e-400, "list": [1, {"a": [ ]}, {}]}')
    page.get_by_role("button", name="Format").click()
    assert editor.input_value() == (
        "{\n"
        '  "orderId": 12345678901234567890,\n'
        '  "price": 1.10,\n'
        '  "tiny": 1e-400,\n'
        '  "list": [\n'
        "    1,\n"
        "    {\n"
        '      "a": []\n'
        "    },\n"
        "    {}\n"
        "  ]\n"
        "}"
    )
    shot(page, "data-03-config-format")

    # Format, then Save: the document keeps the integer exactly.
    editor.fill('{"orderId":12345678901234567890,"beta":true}')
    page.get_by_role("button", name="Format").click()
    assert press_save(page) == "Saved orders as revision 2."
    assert configs.config_get(environment="default", name="orders").data == {
        "orderId": 12345678901234567890,
        "beta": True,
    }


def test_the_editor_follows_another_writer_without_rounding(open_page, server, api):
    put_big_document(api, "orders")
    page = open_page()
    page.goto(server.http_url + "/config/default/orders")
    expect(page.locator("#live-status")).to_have_text("Live")
    mark_page(page)

    # Another client patches the document; the untouched editor follows it.
    response = api.patch("/api/v1/config/orders", json={"beta": True})
    assert response.status_code == 200, response.text
    expect(page.locator('#config-editor input[name="revision"]')).to_have_value("2")
    editor = page.get_by_label("Document JSON")
    assert BIG_INTEGER in editor.input_value()
    assert_not_reloaded(page)

    # Saving the followed editor untouched writes nothing; the stored integer is exact.
    assert press_save(page) == "No changes — nothing saved."
    document = configs.config_get(environment="default", name="orders")
    assert (document.revision, document.data["orderId"]) == (2, 12345678901234567890)


# --- API keys --------------------------------------------------------------------------------------


def test_reloading_after_creating_an_api_key_creates_no_second_key(open_page, server):
    page = open_page()
    page.goto(server.http_url + "/api-keys")
    page.get_by_label("Name").fill("reload-bot")
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#issued-token").input_value()
    assert token.startswith("kvs_")
    assert token not in page.url

    page.reload()

    assert ApiKey.objects.filter(name="reload-bot").count() == 1
    expect(page.locator("#issued-token")).to_have_count(0)
    assert token not in page.content()
    assert apikeys.apikey_authenticate(token=token).name == "reload-bot"


# --- Delete confirmation ----------------------------------------------------------------------


def test_the_delete_confirmation_says_what_the_bucket_keeps(open_page, server, api, make_bucket):
    make_bucket("single")  # history 1, the default
    put_key(api, "single", "k", b"first")
    put_key(api, "single", "k", b"second")
    page = open_page()
    page.goto(server.http_url + "/buckets/single/keys/k")
    page.get_by_role("link", name="Delete…").click()
    confirmation = page.locator("#remove-title + form")
    expect(confirmation).to_contain_text("gone for good")
    expect(confirmation).not_to_contain_text("history stays")
    shot(page, "data-04-delete-history-1")
    page.get_by_role("button", name="Yes, delete revision 2").click()
    # And so it is: only the delete marker is kept.
    history = store.entry_history(bucket=app_bucket("single"), key="k")
    assert [entry.operation for entry in history] == ["delete"]

    make_bucket("kept", history=3)
    for value in (b"one", b"two", b"three"):
        put_key(api, "kept", "k", value)
    page.goto(server.http_url + "/buckets/kept/keys/k?confirm=delete")
    confirmation = page.locator("#remove-title + form")
    expect(confirmation).to_contain_text("revision 3 can still be read")
    expect(confirmation).to_contain_text("revision 1 drops out")
    page.get_by_role("button", name="Yes, delete revision 3").click()
    history = store.entry_history(bucket=app_bucket("kept"), key="k")
    assert [(entry.revision, entry.operation) for entry in history] == [(2, "put"), (3, "put"), (4, "delete")]


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
