"""Access to the dashboard: who sees which page, signing in and out, CSRF, the error pages.

Anonymous visitors are sent to the login page, signed-in users who are not staff get
the 403 page, staff see every page.
"""

import pytest
from django.test import Client

from buckets.core import store
from buckets.core.names import app_bucket
from buckets.namespaces import services as namespaces
from kvsite.access.audit import audit_actor_system
from kvsite.access.guard import BUCKET, Need, whole
from kvsite.dashboard.access import dashboard_view
from kvsite.models import AuditEvent

from .conftest import page_text

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
    assert "not a staff account" in page_text(response)


@pytest.mark.parametrize("path", PAGES)
def test_staff_users_see_every_page(staff_client, world, path):
    response = staff_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    body = page_text(response)
    assert "<main" in body and 'name="csrfmiddlewaretoken"' in body


def test_a_non_staff_user_cannot_post_either(member_client, world):
    response = member_client.post("/", {"name": "sneaky"})

    assert response.status_code == 403
    assert not store.bucket_list(prefix="APP_sneaky").exists()


def test_login_page_signs_staff_in_and_logout_is_a_post(client, staff):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page_text(page)

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
    assert "bucket &#x27;nope&#x27; not found" in page_text(missing_bucket)

    api = staff_client.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert api.json() == {"error": "not found", "code": "not_found"}


# --- Every page declares what it touches --------------------------------------------------------

# Pages that need no staff user, by name: signing in and out, and a redirect to another page.
OPEN_PAGES = {"login", "logout", "bucket-index", "not-found"}


def dashboard_pages() -> list[tuple[str, object]]:
    from kvsite.dashboard.urls import urlpatterns

    return [(str(pattern.name), pattern.callback) for pattern in urlpatterns]


def test_every_dashboard_page_declares_what_each_method_and_action_needs():
    undeclared = [
        name
        for name, view in dashboard_pages()
        if name not in OPEN_PAGES
        and not (getattr(view, "access", None) and all(isinstance(need, Need) for need in view.access.values()))
    ]

    assert len(dashboard_pages()) > len(OPEN_PAGES) + 5
    assert undeclared == []


def test_a_page_refuses_what_its_declaration_does_not_allow_with_the_403_page(staff, rf):
    @dashboard_view({"GET": Need("no-such:permission", resource=whole(BUCKET))})
    def page(request):
        raise AssertionError("the page ran although access was refused")

    request = rf.get("/somewhere")
    request.user = staff
    response = page(request)

    assert response.status_code == 403
    assert "missing permission no-such:permission" in page_text(response)


def test_a_method_a_page_does_not_declare_is_a_405(staff_client, world):
    response = staff_client.put("/buckets/orders")

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


def test_an_action_a_page_does_not_declare_is_a_400_and_changes_nothing(staff_client, world):
    response = staff_client.post("/buckets/orders/keys/order.1", {"action": "overwrite", "value": "x"})

    assert response.status_code == 400
    assert "unknown action" in page_text(response)
    assert store.entry_get(bucket=app_bucket("orders"), key="order.1").revision == 1


# --- A namespace's bucket is shown, never written ---------------------------------------------


@pytest.fixture
def namespace_bucket(world) -> str:
    namespace = namespaces.namespace_create(name="ns", application_id="app", actor=audit_actor_system(name="tests"))
    store.entry_put(bucket=namespace.bucket.name, key="db.host", value=b'{"kvns": 1}')
    return "ns"


def test_a_namespace_bucket_is_shown_read_only_naming_its_namespace(staff_client, namespace_bucket):
    bucket_page = page_text(staff_client.get(f"/buckets/{namespace_bucket}"))
    key_page = page_text(staff_client.get(f"/buckets/{namespace_bucket}/keys/db.host"))

    for page in (bucket_page, key_page):
        assert "holds the entries of namespace <strong>app/ns</strong>" in page
    assert 'value="create_key"' not in bucket_page and 'value="delete_bucket"' not in bucket_page
    assert 'id="edit-form"' not in key_page and "Delete or purge" not in key_page


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/buckets/ns", {"action": "create_key", "key": "forged", "value": "x", "encoding": "text"}),
        ("/buckets/ns", {"action": "delete_bucket", "confirm_name": "ns"}),
        ("/buckets/ns/keys/db.host", {"action": "save", "value": "x", "encoding": "text", "revision": 1}),
        ("/buckets/ns/keys/db.host", {"action": "purge", "revision": 1}),
    ],
)
def test_a_namespace_bucket_refuses_every_change_with_a_409_naming_the_namespace(
    staff_client, namespace_bucket, path, form
):
    response = staff_client.post(path, form)

    assert response.status_code == 409
    assert "namespace" in page_text(response)
    entry = store.entry_get(bucket=app_bucket("ns"), key="db.host")
    assert (entry.revision, bytes(entry.value)) == (1, b'{"kvns": 1}')
    assert not AuditEvent.objects.filter(key_path="forged").exists()


# --- Key changes made on a page are audited ---------------------------------------------------


def test_key_changes_on_a_page_are_audited_as_the_staff_user(staff_client, staff, world):
    staff_client.post("/buckets/orders", {"action": "create_key", "key": "k.new", "value": "v", "encoding": "text"})
    staff_client.post(
        "/buckets/orders/keys/order.1",
        {"action": "save", "value": "changed", "encoding": "text", "newline": "lf", "revision": 1},
    )
    staff_client.post("/buckets/orders/keys/order.1", {"action": "delete", "revision": 3})
    staff_client.post(
        "/buckets/orders/keys/k.new", {"action": "save", "value": "late", "encoding": "text", "revision": 1}
    )

    rows = AuditEvent.objects.filter(actor_type="user", actor_id=str(staff.pk)).order_by("id")
    assert [(row.action, row.key_path, row.success, row.detail) for row in rows] == [
        ("WRITE", "k.new", True, ""),
        ("WRITE", "order.1", True, ""),
        ("DELETE", "order.1", True, "delete"),
        ("WRITE", "k.new", False, ""),  # compare-and-swap lost: k.new is at revision 2, not 1
    ]
    assert all(row.actor_name == "ops" for row in rows)


def test_a_path_that_is_no_page_is_the_dashboards_404_page_in_development_too(client, settings):
    settings.DEBUG = True

    page = client.get("/buckets/orders/oops/extra")
    api = client.get("/api/v1/nothing-here")
    admin = client.get("/admin")  # the admin lives at /admin/

    assert page.status_code == 404
    assert "There is no page at" in page_text(page) and "URLconf" not in page_text(page)
    assert api.status_code == 404 and api.json()["code"] == "not_found"
    assert admin.status_code == 404 and "There is no page at" in page_text(admin)
