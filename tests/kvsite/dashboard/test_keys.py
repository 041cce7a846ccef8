"""A key's page (``/buckets/<name>/keys/<key>``).

The value as JSON, text or hex; compare-and-swap edits and their checks; history and
diffs; delete and purge.
"""

import re

import pytest

from buckets.core import store
from buckets.core.names import app_bucket

from .conftest import page_text


def test_key_page_shows_json_pretty_text_and_hex(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="blob", value=b"\x00\xffbinary")
    store.entry_put(bucket=app_bucket("orders"), key="note", value=b"plain words")

    json_page = page_text(staff_client.get("/buckets/orders/keys/order.1"))
    assert "{\n  &quot;total&quot;: 12\n}" in json_page

    assert "plain words" in page_text(staff_client.get("/buckets/orders/keys/note"))

    hex_page = page_text(staff_client.get("/buckets/orders/keys/blob"))
    assert "00 ff 62 69 6e 61 72 79" in hex_page
    assert 'value="00ff62696e617279"' not in hex_page  # the edit box holds it, as text
    assert "00ff62696e617279</textarea>" in hex_page


def test_saving_a_key_is_compare_and_swap(staff_client, world):
    response = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": '{"total": 13}', "encoding": "text", "newline": "lf", "revision": 1},
    )

    assert response.status_code == 302
    entry = store.entry_get(bucket=app_bucket("orders"), key="order.1")
    assert (bytes(entry.value), entry.revision) == (b'{"total": 13}', 2)


def test_a_concurrent_write_shows_the_conflict_with_both_values(staff_client, world):
    # Given the page was loaded at revision 1, someone else writes revision 2.
    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b'{"total": 99, "by": "api"}')

    # When the dashboard saves its edit of revision 1,
    response = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": '{"total": 13}', "encoding": "text", "newline": "lf", "revision": 1},
    )

    # then nothing is overwritten and the page shows both values, aiming the form at revision 2.
    assert response.status_code == 200
    body = page_text(response)
    assert "Someone else wrote this key meanwhile" in body
    assert "&quot;by&quot;: &quot;api&quot;" in body
    assert "&quot;total&quot;: 13" in body
    assert 'name="revision" value="2"' in body
    assert bytes(store.entry_get(bucket=app_bucket("orders"), key="order.1").value) == b'{"total": 99, "by": "api"}'


def test_saving_checks_json_and_hex_when_asked(staff_client, world):
    not_json = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": "{oops", "encoding": "text", "newline": "lf", "revision": 1, "check_json": "on"},
    )
    assert "This text is not valid JSON" in page_text(not_json)

    not_hex = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": "zz", "encoding": "hex", "newline": "lf", "revision": 1},
    )
    assert "not valid hex" in page_text(not_hex)
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 1


def test_the_json_check_of_the_key_editor_keeps_numbers_exact_and_refuses_duplicates(staff_client, world):
    def save(value: str):
        form = {"action": "save", "value": value, "encoding": "text", "newline": "lf", "check_json": "on"}
        revision = store.entry_get(bucket=app_bucket("orders"), key="order.1").revision
        return staff_client.post("/buckets/orders/keys/order.1", {**form, "revision": revision})

    duplicate = save('{"total": 1, "total": 2}')
    assert "This text: duplicate member name" in page_text(duplicate)

    assert save('{"total": 1e999, "s": "\\ud800"}').status_code == 302
    stored = bytes(store.entry_get(bucket=app_bucket("orders"), key="order.1").value)
    assert stored == b'{"total": 1e999, "s": "\\ud800"}'


def test_text_edits_keep_the_values_line_endings(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="crlf", value=b"a\r\nb")
    page = page_text(staff_client.get("/buckets/orders/keys/crlf"))
    assert 'name="newline" value="crlf"' in page

    staff_client.post(
        "/buckets/orders/keys/crlf",
        {"action": "save", "value": "a\r\nb\r\nc", "encoding": "text", "newline": "crlf", "revision": 2},
    )
    staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": "x\r\ny", "encoding": "text", "newline": "lf", "revision": 1},
    )

    assert bytes(store.entry_get(bucket=app_bucket("orders"), key="crlf").value) == b"a\r\nb\r\nc"
    assert bytes(store.entry_get(bucket=app_bucket("orders"), key="order.1").value) == b"x\ny"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"a\x00b", "NUL bytes"),
        (b"a\rb", "a CR that does not end a CRLF line break"),
        (b"a\r\nb\nc", "mixes CRLF and LF"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_a_value_a_text_box_would_change_is_edited_as_hex(staff_client, world, value, why):
    store.entry_put(bucket=app_bucket("orders"), key="odd", value=value)

    page = page_text(staff_client.get("/buckets/orders/keys/odd"))

    assert f"{value.hex()}</textarea>" in page
    assert '<option value="hex" selected>' in page
    assert "a text box would change this value" in page and why in page


def test_a_value_that_round_trips_through_a_text_box_is_edited_as_text(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="odd", value="tab\tff\x0cdel\x7f\ufeff\r\n".encode())

    page = page_text(staff_client.get("/buckets/orders/keys/odd"))

    assert '<option value="text" selected>' in page
    assert "a text box would change" not in page


def test_saving_the_value_the_key_holds_writes_nothing(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="blob", value=b"\x00\r")

    same_hex = staff_client.post(
        "/buckets/orders/keys/blob", {"action": "save", "value": "00 0d", "encoding": "hex", "revision": 2}, follow=True
    )
    same_text = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": '{"total": 12}', "encoding": "text", "newline": "lf", "revision": 1},
        follow=True,
    )

    assert "No changes — nothing saved." in page_text(same_hex) and "No changes" in page_text(same_text)
    assert store.entry_get(bucket=app_bucket("orders"), key="blob").revision == 2
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 1


def test_history_and_diff_between_revisions(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b'{"total": 12, "paid": true}')

    body = page_text(staff_client.get("/buckets/orders/keys/order.1?from=1&to=2"))

    assert "Revision 1 → 2" in body
    assert '<span class="diff-del">-  &quot;total&quot;: 12</span>' in body
    assert '<span class="diff-add">+  &quot;paid&quot;: true</span>' in body
    assert "Value at revision 1" in page_text(staff_client.get("/buckets/orders/keys/order.1?rev=1"))


def test_delete_and_purge_need_confirmation(staff_client, world):
    confirm = page_text(staff_client.get("/buckets/orders/keys/order.1?confirm=delete"))
    assert "Yes, delete revision 1" in confirm

    deleted = staff_client.post("/buckets/orders/keys/order.1", {"action": "delete", "revision": 1})
    assert deleted.status_code == 302
    tombstone = page_text(staff_client.get("/buckets/orders/keys/order.1"))
    assert "it was deleted at revision 2" in tombstone

    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b"again")
    stale = staff_client.post("/buckets/orders/keys/order.1", {"action": "purge", "revision": 2})
    assert stale.status_code == 302
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 3

    purged = staff_client.post("/buckets/orders/keys/order.1", {"action": "purge", "revision": 3})
    assert purged["Location"] == "/buckets/orders"
    assert store.entry_history(bucket=app_bucket("orders"), key="order.1")[-1].operation == "purge"


def test_the_delete_confirmation_says_what_the_buckets_history_keeps(staff_client, world, make_bucket):
    make_bucket("single")
    store.entry_put(bucket=app_bucket("single"), key="k", value=b"only")
    for value in (b"2", b"3", b"4", b"5"):
        store.entry_put(bucket=app_bucket("orders"), key="order.1", value=value)

    single = page_text(staff_client.get("/buckets/single/keys/k?confirm=delete"))
    kept = page_text(staff_client.get("/buckets/orders/keys/order.1?confirm=delete"))

    assert "Its value is gone for good" in single and "history stays" not in single
    assert "keeps the last 5 entries" in kept and "revision 5 can still be read there; revision 1 drops out" in kept


def test_text_keys_with_any_characters_round_trip_through_links(staff_client, make_bucket):
    make_bucket("items-team", key_format="text")
    key = "my notes/ü ?#&.txt"
    store.entry_put(bucket=app_bucket("items-team"), key=key, value=b"hi")

    listing = page_text(staff_client.get("/buckets/items-team"))
    href = re.search(r'<th scope="row"><a href="([^"]+)">', listing).group(1)
    page = staff_client.get(href.replace("&amp;", "&"))

    assert page.status_code == 200
    body = page_text(page)
    assert "my notes/ü ?#&amp;.txt" in body
    assert "data-watch-key" not in body  # text keys are not wildcard patterns: the page filters events itself


def test_a_missing_key_is_a_404_page(staff_client, world):
    response = staff_client.get("/buckets/orders/keys/nope")

    assert response.status_code == 404
    assert "key &#x27;nope&#x27; not found" in page_text(response)
