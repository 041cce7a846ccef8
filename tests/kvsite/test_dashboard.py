"""The staff dashboard through Django's test client: access rules, every page, and the form actions."""

import base64
import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from buckets.configs import services as configs
from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access.audit import audit_actor_system
from kvsite.models import ApiKey, AuditEvent
from secrets_app import services as secrets

MASTER_KEY = "dash:" + base64.b64encode(bytes(range(32))).decode()
PLAINTEXT = "dashboard-PLAINTEXT-CANARY-4c1d"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    # A known master key, and a fast password hasher (the default one takes most of a second per user).
    with override_settings(
        KV_MASTER_KEYS=MASTER_KEY, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    ):
        yield


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", password="pw-ops-123456", is_staff=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def member_client(db) -> Client:
    user = get_user_model().objects.create_user("member", password="pw-member-123456")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db) -> dict:
    """One of everything the pages show: a bucket with a key, a config document, a secret."""
    store.bucket_create(name=app_bucket("orders"), description="Order data", history=5)
    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b'{"total": 12}')
    configs.config_set(environment="default", name="flags", data={"beta": False, "theme": "dark", "search": True})
    secrets.secret_create(
        environment="prod", name="db/password", value=PLAINTEXT, actor=audit_actor_system(name="tests")
    )
    return {}


PAGES = [
    "/",
    "/buckets/orders",
    "/buckets/orders/keys/order.1",
    "/config",
    "/config/default/flags",
    "/secrets",
    "/secrets/prod/db/password",
    "/audit",
    "/api-keys",
]


def _text(response) -> str:
    return response.content.decode()


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, world, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", PAGES)
def test_signed_in_users_who_are_not_staff_get_the_403_page(member_client, world, path):
    response = member_client.get(path)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "not a staff account" in _text(response)


@pytest.mark.parametrize("path", PAGES)
def test_staff_users_see_every_page(staff_client, world, path):
    response = staff_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    body = _text(response)
    assert "<main" in body and 'name="csrfmiddlewaretoken"' in body


def test_a_non_staff_user_cannot_post_either(member_client, world):
    response = member_client.post("/", {"name": "sneaky"})

    assert response.status_code == 403
    assert not store.bucket_list(prefix="APP_sneaky").exists()


def test_login_page_signs_staff_in_and_logout_is_a_post(client, staff):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in _text(page)

    signed_in = client.post("/login", {"username": "ops", "password": "pw-ops-123456"})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    assert client.get("/").status_code == 200

    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_posts_without_a_csrf_token_are_refused(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post("/", {"name": "nocsrf", "ttl_seconds": 0, "history": 1, "key_format": "nats"})

    assert response.status_code == 403
    assert not store.bucket_list(prefix="APP_nocsrf").exists()


def test_dashboard_404s_are_html_and_api_404s_stay_json(staff_client, world):
    page = staff_client.get("/no/such/page")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")

    missing_bucket = staff_client.get("/buckets/nope")
    assert missing_bucket.status_code == 404
    assert "bucket &#x27;nope&#x27; not found" in _text(missing_bucket)

    api = staff_client.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert api.json() == {"error": "not found", "code": "not_found"}


# --- Buckets ----------------------------------------------------------------------------------


def test_bucket_list_shows_only_user_buckets(staff_client, world):
    body = _text(staff_client.get("/"))

    assert "orders" in body and "Order data" in body
    assert "SYS_" not in body
    assert "SYS_" not in _text(staff_client.get("/?q=config"))
    assert "SYS_" not in _text(staff_client.get("/?q=SYS"))
    # A SYS_ bucket cannot be opened by name either: the page only builds APP_ names.
    assert staff_client.get("/buckets/SYS_config_default").status_code == 404


def test_search_filters_the_bucket_list(staff_client, world):
    store.bucket_create(name=app_bucket("invoices"))

    body = _text(staff_client.get("/?q=inv"))

    assert 'data-bucket="invoices"' in body
    assert 'data-bucket="orders"' not in body


def test_create_bucket_with_every_option(staff_client, db):
    response = staff_client.post(
        "/",
        {
            "name": "sessions",
            "description": "Web sessions",
            "ttl_seconds": 3600,
            "history": 5,
            "max_value_size": 2048,
            "max_bytes": 100000,
            "max_keys": 10,
            "key_format": "text",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/buckets/sessions"
    bucket = store.bucket_get(name=app_bucket("sessions"))
    assert (bucket.description, bucket.ttl_seconds, bucket.history) == ("Web sessions", 3600, 5)
    assert (bucket.max_value_size, bucket.max_bytes, bucket.max_keys, bucket.key_format) == (2048, 100000, 10, "text")
    assert AuditEvent.objects.filter(namespace="APP_sessions", detail="bucket created", actor_name="ops").exists()


def test_creating_a_bucket_that_exists_shows_the_error(staff_client, world):
    response = staff_client.post("/", {"name": "orders", "ttl_seconds": 0, "history": 1, "key_format": "nats"})

    assert response.status_code == 200
    assert "bucket &#x27;orders&#x27; already exists" in _text(response)


def test_invalid_bucket_options_are_form_errors(staff_client, db):
    response = staff_client.post("/", {"name": "bad name!", "ttl_seconds": -1, "history": 99, "key_format": "nats"})

    assert response.status_code == 200
    body = _text(response)
    assert body.count('class="errorlist') >= 3
    assert not store.bucket_list(prefix="APP_bad").exists()


def test_deleting_a_bucket_needs_its_name_typed(staff_client, world):
    wrong = staff_client.post("/buckets/orders", {"action": "delete_bucket", "confirm_name": "order"})
    assert wrong.status_code == 200
    assert "nothing was deleted" in _text(wrong)
    assert store.bucket_get(name=app_bucket("orders"))

    right = staff_client.post("/buckets/orders", {"action": "delete_bucket", "confirm_name": "orders"})
    assert right.status_code == 302
    assert not store.bucket_list(prefix="APP_orders").exists()


def test_bucket_page_lists_keys_with_the_watch_wiring(staff_client, world):
    body = _text(staff_client.get("/buckets/orders"))

    assert 'data-key="order.1"' in body
    assert 'data-watch-path="/api/v1/kv/buckets/orders/watch"' in body
    assert 'data-since="1"' in body


def test_key_list_pages_with_a_cursor_and_goes_back(staff_client, make_bucket):
    make_bucket("many")
    for number in range(250):
        store.entry_put(bucket=app_bucket("many"), key=f"k.{number:04d}", value=b"x")

    first = _text(staff_client.get("/buckets/many"))
    assert first.count("<tr data-key=") == 100
    assert 'data-key="k.0099"' in first and 'data-key="k.0100"' not in first
    next_url = re.search(r'href="(\?[^"]*cursor=[^"]*)" hx-get="[^"]*"[^>]*rel="next"', first).group(1)

    second = _text(staff_client.get("/buckets/many" + next_url.replace("&amp;", "&")))
    assert 'data-key="k.0100"' in second and 'data-key="k.0199"' in second
    assert 'data-key="k.0099"' not in second
    assert 'data-after="k.0099"' in second and 'data-until="k.0199"' in second
    previous_url = re.search(r'href="(\?[^"]*)" hx-get="[^"]*"[^>]*rel="prev"', second).group(1)

    back = _text(staff_client.get("/buckets/many" + previous_url.replace("&amp;", "&")))
    assert 'data-key="k.0000"' in back and 'data-key="k.0100"' not in back


def test_key_filter_uses_wildcards_and_htmx_gets_only_the_list(staff_client, make_bucket):
    make_bucket("users")
    for key in ("user.1", "user.2", "group.1"):
        store.entry_put(bucket=app_bucket("users"), key=key, value=b"{}")

    response = staff_client.get("/buckets/users?filter=user.*", HTTP_HX_REQUEST="true")

    body = _text(response)
    assert "<html" not in body
    assert 'data-key="user.1"' in body and 'data-key="user.2"' in body and 'data-key="group.1"' not in body
    assert 'data-watch-key="user.*"' in body


def test_a_bad_filter_is_a_message_not_an_error(staff_client, world):
    response = staff_client.get("/buckets/orders?filter=a.>.b")

    assert response.status_code == 200
    assert "may only be the last token" in _text(response)


def test_create_key_from_the_bucket_page(staff_client, world):
    response = staff_client.post(
        "/buckets/orders", {"action": "create_key", "key": "order.2", "value": "hello", "encoding": "text"}
    )
    assert response.status_code == 302
    assert bytes(store.entry_get(bucket=app_bucket("orders"), key="order.2").value) == b"hello"

    again = staff_client.post(
        "/buckets/orders", {"action": "create_key", "key": "order.2", "value": "x", "encoding": "text"}
    )
    assert "already exists" in _text(again)


# --- One key ----------------------------------------------------------------------------------


def test_key_page_shows_json_pretty_text_and_hex(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="blob", value=b"\x00\xffbinary")
    store.entry_put(bucket=app_bucket("orders"), key="note", value=b"plain words")

    json_page = _text(staff_client.get("/buckets/orders/keys/order.1"))
    assert "{\n  &quot;total&quot;: 12\n}" in json_page

    assert "plain words" in _text(staff_client.get("/buckets/orders/keys/note"))

    hex_page = _text(staff_client.get("/buckets/orders/keys/blob"))
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
    body = _text(response)
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
    assert "This text is not valid JSON" in _text(not_json)

    not_hex = staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": "zz", "encoding": "hex", "newline": "lf", "revision": 1},
    )
    assert "not valid hex" in _text(not_hex)
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 1


def test_text_edits_keep_the_values_line_endings(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="crlf", value=b"a\r\nb")
    page = _text(staff_client.get("/buckets/orders/keys/crlf"))
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


def test_history_and_diff_between_revisions(staff_client, world):
    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b'{"total": 12, "paid": true}')

    body = _text(staff_client.get("/buckets/orders/keys/order.1?from=1&to=2"))

    assert "Revision 1 → 2" in body
    assert '<span class="diff-del">-  &quot;total&quot;: 12</span>' in body
    assert '<span class="diff-add">+  &quot;paid&quot;: true</span>' in body
    assert "Value at revision 1" in _text(staff_client.get("/buckets/orders/keys/order.1?rev=1"))


def test_delete_and_purge_need_confirmation(staff_client, world):
    confirm = _text(staff_client.get("/buckets/orders/keys/order.1?confirm=delete"))
    assert "Yes, delete revision 1" in confirm

    deleted = staff_client.post("/buckets/orders/keys/order.1", {"action": "delete", "revision": 1})
    assert deleted.status_code == 302
    tombstone = _text(staff_client.get("/buckets/orders/keys/order.1"))
    assert "it was deleted at revision 2" in tombstone

    store.entry_put(bucket=app_bucket("orders"), key="order.1", value=b"again")
    stale = staff_client.post("/buckets/orders/keys/order.1", {"action": "purge", "revision": 2})
    assert stale.status_code == 302
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 3

    purged = staff_client.post("/buckets/orders/keys/order.1", {"action": "purge", "revision": 3})
    assert purged["Location"] == "/buckets/orders"
    assert store.entry_history(bucket=app_bucket("orders"), key="order.1")[-1].operation == "purge"


def test_text_keys_with_any_characters_round_trip_through_links(staff_client, make_bucket):
    make_bucket("items-team", key_format="text")
    key = "my notes/ü ?#&.txt"
    store.entry_put(bucket=app_bucket("items-team"), key=key, value=b"hi")

    listing = _text(staff_client.get("/buckets/items-team"))
    href = re.search(r'<th scope="row"><a href="([^"]+)">', listing).group(1)
    page = staff_client.get(href.replace("&amp;", "&"))

    assert page.status_code == 200
    body = _text(page)
    assert "my notes/ü ?#&amp;.txt" in body
    assert "data-watch-key" not in body  # text keys are not wildcard patterns: the page filters events itself


def test_a_missing_key_is_a_404_page(staff_client, world):
    response = staff_client.get("/buckets/orders/keys/nope")

    assert response.status_code == 404
    assert "key &#x27;nope&#x27; not found" in _text(response)


# --- Config -----------------------------------------------------------------------------------


def test_config_page_lists_documents_and_environments(staff_client, world):
    body = _text(staff_client.get("/config"))

    assert "flags" in body and ">default<" in body
    assert "SYS_" not in body


def test_create_config_document_validates_json(staff_client, db):
    bad = staff_client.post("/config", {"environment": "staging", "name": "app", "data": "[1, 2]"})
    assert "must be a JSON object" in _text(bad)

    good = staff_client.post("/config", {"environment": "staging", "name": "app", "data": '{"debug": true}'})
    assert good.status_code == 302
    assert configs.config_get(environment="staging", name="app").data == {"debug": True}


def test_document_page_shows_top_level_booleans_as_switches(staff_client, world):
    body = _text(staff_client.get("/config/default/flags"))

    assert body.count('role="switch"') == 2
    assert 'data-flag="beta"' in body and 'data-flag="search"' in body
    assert 'data-flag="theme"' not in body


def test_a_switch_saves_with_one_click(staff_client, world):
    response = staff_client.post(
        "/config/default/flags", {"action": "toggle", "flag": "beta", "value": "true"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    body = _text(response)
    assert body.lstrip().startswith('<section id="config-live"')
    assert "beta is now on (revision 2)" in body
    assert configs.config_get(environment="default", name="flags").data == {
        "beta": True,
        "theme": "dark",
        "search": True,
    }

    plain = staff_client.post("/config/default/flags", {"action": "toggle", "flag": "beta", "value": "false"})
    assert plain.status_code == 302
    assert configs.config_get(environment="default", name="flags").data["beta"] is False


def test_a_switch_for_a_field_that_is_no_longer_a_flag_changes_nothing(staff_client, world):
    response = staff_client.post("/config/default/flags", {"action": "toggle", "flag": "theme", "value": "true"})

    assert "not a feature flag" in _text(response)
    assert configs.config_get(environment="default", name="flags").revision == 1


def test_config_editor_saves_with_compare_and_swap(staff_client, world):
    saved = staff_client.post("/config/default/flags", {"action": "save", "data": '{"beta": true}', "revision": 1})
    assert saved.status_code == 302
    assert configs.config_get(environment="default", name="flags").data == {"beta": True}

    conflict = staff_client.post("/config/default/flags", {"action": "save", "data": '{"beta": false}', "revision": 1})
    body = _text(conflict)
    assert "Someone else saved this document meanwhile" in body
    assert 'name="revision" value="2"' in body
    assert configs.config_get(environment="default", name="flags").data == {"beta": True}

    invalid = staff_client.post("/config/default/flags", {"action": "save", "data": "{nope", "revision": 2})
    assert "This text is not valid JSON" in _text(invalid)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"beta": 1e999}', "beta: the number 1e999 is too large to store"),
        ('{"beta": "\\ud800"}', "beta: the string has a lone surrogate \\ud800"),
        ('{"beta": true, "beta": false}', "This text: duplicate member name &quot;beta&quot;"),
    ],
)
def test_the_config_editor_shows_what_json_cannot_be_stored_and_saves_nothing(staff_client, world, text, error):
    saved = staff_client.post("/config/default/flags", {"action": "save", "data": text, "revision": 1})
    created = staff_client.post("/config", {"environment": "default", "name": "other", "data": text})

    assert saved.status_code == 200 and created.status_code == 200
    assert error in _text(saved) and error in _text(created)
    assert configs.config_get(environment="default", name="flags").revision == 1
    assert [doc.name for doc in configs.config_list(environment="default")] == ["flags"]


def test_the_json_check_of_the_key_editor_keeps_numbers_exact_and_refuses_duplicates(staff_client, world):
    def save(value: str):
        form = {"action": "save", "value": value, "encoding": "text", "newline": "lf", "check_json": "on"}
        revision = store.entry_get(bucket=app_bucket("orders"), key="order.1").revision
        return staff_client.post("/buckets/orders/keys/order.1", {**form, "revision": revision})

    duplicate = save('{"total": 1, "total": 2}')
    assert "This text: duplicate member name" in _text(duplicate)

    assert save('{"total": 1e999, "s": "\\ud800"}').status_code == 302
    stored = bytes(store.entry_get(bucket=app_bucket("orders"), key="order.1").value)
    assert stored == b'{"total": 1e999, "s": "\\ud800"}'


def test_config_history_view_and_rollback(staff_client, world):
    configs.config_patch(environment="default", name="flags", patch={"beta": True})

    view = _text(staff_client.get("/config/default/flags?rev=1"))
    assert "Changes from revision 1 to the current one" in view

    rolled = staff_client.post("/config/default/flags", {"action": "rollback", "revision": 1})
    assert rolled.status_code == 302
    document = configs.config_get(environment="default", name="flags")
    assert (document.revision, document.data["beta"]) == (3, False)


def test_config_delete_with_confirmation(staff_client, world):
    assert "Yes, delete" in _text(staff_client.get("/config/default/flags?confirm=delete"))

    response = staff_client.post("/config/default/flags", {"action": "delete", "revision": 1})

    assert response.status_code == 302
    assert configs.config_list(environment="default") == []


# --- Secrets ----------------------------------------------------------------------------------


def test_secret_values_are_masked_in_listings(staff_client, world):
    body = _text(staff_client.get("/secrets?env=prod"))

    assert "db/password" in body and "••••••••" in body
    assert PLAINTEXT not in body
    assert "SYS_" not in body
    assert PLAINTEXT not in _text(staff_client.get("/secrets/prod/db/password"))


def test_secrets_are_grouped_by_namespace(staff_client, world):
    actor = audit_actor_system(name="tests")
    secrets.secret_create(environment="prod", name="stripe/key", value="sk", actor=actor)
    secrets.secret_create(environment="prod", name="plain", value="p", actor=actor)

    every = _text(staff_client.get("/secrets?env=prod"))
    assert ">db/</a>" in every and ">stripe/</a>" in every
    assert every.count("<tr data-secret=") == 3

    stripe = _text(staff_client.get("/secrets?env=prod&ns=stripe"))
    assert 'data-secret="stripe/key"' in stripe and 'data-secret="db/password"' not in stripe


def test_reveal_shows_the_value_and_is_audited(staff_client, world):
    response = staff_client.post(
        "/secrets/prod/db/password", {"action": "reveal", "dom_id": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = _text(response)
    assert PLAINTEXT in body and 'id="value-1"' in body
    event = AuditEvent.objects.filter(action="REVEAL").get()
    assert (event.namespace, event.key_path, event.actor_name, event.success) == (
        "SYS_secrets_prod",
        "db/password",
        "ops",
        True,
    )


def test_rotate_and_roll_back_a_secret(staff_client, world):
    rotated = staff_client.post("/secrets/prod/db/password", {"action": "rotate", "value": "new-value"})
    assert rotated.status_code == 302
    actor = audit_actor_system(name="tests")
    assert secrets.secret_reveal(environment="prod", name="db/password", actor=actor).value == "new-value"

    page = _text(staff_client.get("/secrets/prod/db/password"))
    assert "Roll back to this" in page and "ops" in page

    rolled = staff_client.post("/secrets/prod/db/password", {"action": "rollback", "revision": 1})
    assert rolled.status_code == 302
    revealed = secrets.secret_reveal(environment="prod", name="db/password", actor=actor)
    assert (revealed.value, revealed.revision) == (PLAINTEXT, 3)
    assert AuditEvent.objects.filter(action="ROLLBACK", key_path="db/password", success=True).exists()


def test_create_and_delete_a_secret(staff_client, db):
    created = staff_client.post(
        "/secrets", {"environment": "staging", "name": "api/token", "value": "s3cr3t", "description": "3rd party"}
    )
    assert created.status_code == 302
    listing = _text(staff_client.get("/secrets?env=staging"))
    assert "api/token" in listing and "3rd party" in listing and "s3cr3t" not in listing

    deleted = staff_client.post("/secrets/staging/api/token", {"action": "delete"})
    assert deleted.status_code == 302
    assert 'data-secret="api/token"' not in _text(staff_client.get("/secrets?env=staging"))


# --- Audit ------------------------------------------------------------------------------------


def test_audit_page_filters_and_pages(staff_client, world):
    for _ in range(60):
        secrets.secret_reveal(environment="prod", name="db/password", actor=audit_actor_system(name="bot"))

    first = _text(staff_client.get("/audit?action=REVEAL&actor=bot&namespace=secrets:prod"))
    assert first.count('<tr data-action="REVEAL">') == 50
    assert "secrets:prod" in first and "SYS_secrets_prod" not in first
    older = re.search(r'href="(\?[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")

    second = _text(staff_client.get("/audit" + older))
    assert second.count('<tr data-action="REVEAL">') == 10
    assert 'rel="prev"' in second

    assert "No audit events match" in _text(staff_client.get("/audit?actor=nobody"))
    assert "Check the filters" in _text(staff_client.get("/audit?since=yesterday"))


# --- API keys ---------------------------------------------------------------------------------


def test_create_api_key_shows_the_token_once(staff_client, db):
    response = staff_client.post(
        "/api-keys", {"name": "ci", "role": "writer", "bucket_pattern": "orders-*", "account": "team-a"}
    )

    assert response.status_code == 200
    body = _text(response)
    token = re.search(r'id="issued-token"[^>]*value="(kvs_[^"]+)"', body).group(1)
    api_key = ApiKey.objects.get(name="ci")
    assert (api_key.role, api_key.bucket_pattern, api_key.prefix) == ("writer", "orders-*", token[:12])
    assert api_key.account == "team-a"
    listing = _text(staff_client.get("/api-keys"))
    assert api_key.prefix in listing and token not in listing


def test_revoke_api_key(staff_client, db):
    staff_client.post("/api-keys", {"name": "old", "role": "reader"})
    api_key = ApiKey.objects.get(name="old")

    response = staff_client.post("/api-keys/revoke", {"api_key_id": api_key.pk})

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert "revoked" in _text(staff_client.get("/api-keys"))
    assert staff_client.post("/api-keys/revoke", {"api_key_id": 999999}).status_code == 404


def test_invalid_api_key_input_is_a_form_error(staff_client, db):
    response = staff_client.post("/api-keys", {"name": "", "role": "root"})
    bad_account = staff_client.post("/api-keys", {"name": "x", "role": "reader", "account": "no spaces"})

    assert response.status_code == 200
    assert 'id="issued-token"' not in _text(response)
    assert "account must be 1-40 letters" in _text(bad_account)
    assert not ApiKey.objects.exists()
