"""``/api/v1/apikeys``: issue (the token once), list (never a token), revoke; audited; no escalation."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from buckets.core.exceptions import InvalidArgument
from kvsite.access import apikeys
from kvsite.access.guard import scopes_parse
from kvsite.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/apikeys"
MANAGE = "apikeys:manage"


def client_of(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def manager(
    role: str = "none",
    *,
    permissions: tuple[str, ...] = (MANAGE,),
    scopes: tuple[str, ...] = (),
    expires_at: datetime | None = None,
    name: str = "manager",
) -> APIClient:
    issued = apikeys.apikey_create(name=name, role=role, permissions=permissions, scopes=scopes, expires_at=expires_at)
    return client_of(issued.token)


def issue(client: APIClient, **body):
    return client.post(API, body, format="json")


# --- Who may manage keys ----------------------------------------------------------------------


def test_without_a_valid_key_it_is_401() -> None:
    assert APIClient().get(API).status_code == 401
    assert client_of("kvs_wrong").post(API, {"name": "x", "role": "reader"}, format="json").status_code == 401


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_roles_without_apikeys_manage_are_refused(client_for, role: str) -> None:
    client = client_for(role)

    assert client.get(API).status_code == 403
    assert issue(client, name="x", role="reader").status_code == 403
    assert client.delete(f"{API}/1").status_code == 403
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize("scope", ["bucket:*", "config:*", "audit", "metrics"])
def test_a_scoped_admin_without_an_apikeys_scope_is_refused(scope: str) -> None:
    client = manager("admin", permissions=(), scopes=(scope,))

    response = issue(client, name="x", role="reader")

    assert response.status_code == 403 and "may not access apikeys" in response.json()["error"]
    assert client.get(API).status_code == 403


def test_apikeys_manage_alone_or_an_admin_manages_keys(admin_client) -> None:
    assert admin_client.get(API).status_code == 200
    assert manager().get(API).status_code == 200
    assert manager("admin", permissions=(), scopes=("apikeys", "bucket:a-*")).get(API).status_code == 200


# --- Issue, list, revoke ----------------------------------------------------------------------


def test_a_new_keys_token_is_in_its_issuing_response_only(admin_client) -> None:
    response = issue(
        admin_client,
        name="ci",
        role="writer",
        permissions=["metrics:read"],
        scopes=["bucket:orders-*", "config:prod"],
        expires="30d",
    )

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    token = body.pop("token")
    stored = ApiKey.objects.get(name="ci")
    assert body | {"created_at": None, "expires_at": None} == {
        "id": stored.pk,
        "name": "ci",
        "prefix": token[:12],
        "role": "writer",
        "permissions": ["metrics:read"],
        "scopes": ["bucket:orders-*", "config:prod"],
        "account": f"key-{stored.pk}",
        "created_at": None,
        "expires_at": None,
    }
    assert timedelta(days=29) < stored.expires_at - timezone.now() <= timedelta(days=30)
    assert client_of(token).get("/api/v1/config", HTTP_X_IRONFLOW_ENVIRONMENT_ID="prod").status_code == 200

    listing = admin_client.get(API)
    assert token not in listing.content.decode() and stored.token_hash not in listing.content.decode()
    listed = {key["name"]: key for key in listing.json()["keys"]}
    assert set(listed["ci"]) == {
        "id",
        "name",
        "prefix",
        "role",
        "permissions",
        "scopes",
        "account",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert listed["ci"]["last_used_at"] is not None and listing.json()["count"] == 2


def test_revoking_stops_the_key_at_once(admin_client) -> None:
    token = issue(admin_client, name="old", role="reader").json()["token"]
    key_id = ApiKey.objects.get(name="old").pk
    assert client_of(token).get("/api/v1/kv/buckets").status_code == 200

    assert admin_client.delete(f"{API}/{key_id}").status_code == 204

    assert client_of(token).get("/api/v1/kv/buckets").status_code == 401
    assert admin_client.delete(f"{API}/{key_id}").status_code == 204  # revoked already: nothing to do
    assert admin_client.delete(f"{API}/999999").json()["code"] == "not_found"
    assert next(k for k in admin_client.get(API).json()["keys"] if k["name"] == "old")["revoked_at"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "x", "role": "reader", "scope": ["bucket:a"]}, "unknown member scope"),
        ({"name": "x"}, "role must be a string"),
        ({"name": "x", "role": "root"}, "role must be one of"),
        ({"name": "x", "role": "reader", "scopes": "bucket:a"}, "scopes must be a list of strings"),
        ({"name": "x", "role": "reader", "scopes": ["buckets:a"]}, "the kind must be one of"),
        ({"name": "x", "role": "none", "permissions": ["kv-everything"]}, "unknown permission kv-everything"),
        ({"name": "x", "role": "reader", "expires": "soon"}, "give a lifetime (30d, 12h, 2w)"),
        ({"name": "x", "role": "reader", "expires": "2001-01-01"}, "is in the past"),
        ([1, 2], "body must be a JSON object"),
    ],
)
def test_a_malformed_request_is_a_400_saying_what(admin_client, body, says: str) -> None:
    response = admin_client.post(API, body, format="json")

    assert response.status_code == 400
    assert says in response.json()["error"]
    assert ApiKey.objects.count() == 1


# --- No escalation through apikeys:manage ---------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "permissions"),
    [("admin", []), ("writer", []), ("reader", []), ("none", ["kv-secret:read"]), ("none", ["kv-audit:read"])],
)
def test_a_key_cannot_issue_a_key_with_more_permissions_than_its_own(role: str, permissions: list[str]) -> None:
    client = manager(permissions=(MANAGE, "kv-entry:read"))

    response = issue(client, name="wider", role=role, permissions=permissions)

    assert response.status_code == 403
    assert "a key cannot issue a key with permissions it does not hold" in response.json()["error"]
    assert not ApiKey.objects.filter(name="wider").exists()


def test_a_key_issues_keys_with_what_it_holds() -> None:
    client = manager(permissions=(MANAGE, "kv-entry:read", "kv-namespace:read", "config:read"))

    assert issue(client, name="r", role="reader").status_code == 201
    assert issue(client, name="n", role="none", permissions=["kv-entry:read"]).status_code == 201
    assert issue(client, name="m", role="none", permissions=[MANAGE]).status_code == 201


@pytest.mark.parametrize(
    "scopes",
    [
        [],  # unrestricted
        ["bucket:*"],
        ["bucket:a*"],
        ["bucket:a-*", "config:*"],
        ["bucket:?-x"],
        ["bucket:[ab]-x"],
        ["secrets:a-x"],
        ["apikeys", "metrics"],
    ],
)
def test_a_scoped_key_cannot_issue_a_key_with_wider_scopes(scopes: list[str]) -> None:
    client = manager("admin", permissions=(), scopes=("apikeys", "bucket:a-*"))

    response = issue(client, name="wider", role="reader", scopes=scopes)

    assert response.status_code == 403
    assert "where it is limited to" in response.json()["error"] or "scopes beyond its own" in response.json()["error"]
    assert not ApiKey.objects.filter(name="wider").exists()


@pytest.mark.parametrize("scopes", [["bucket:a-*"], ["bucket:a-b*"], ["bucket:a-x", "bucket:a-[xy]"], ["apikeys"]])
def test_a_scoped_key_issues_keys_within_its_scopes(scopes: list[str]) -> None:
    client = manager("admin", permissions=(), scopes=("apikeys", "bucket:a-*"))

    assert issue(client, name="narrower", role="reader", scopes=scopes).status_code == 201


def test_a_key_shares_only_its_own_items_account() -> None:
    other = apikeys.apikey_create(name="other", role="writer").api_key
    issuer = apikeys.apikey_create(name="issuer", role="admin")
    client = client_of(issuer.token)

    refused = issue(client, name="spy", role="reader", account=other.account)
    shared = issue(client, name="mine", role="reader", account=issuer.api_key.account)

    assert refused.status_code == 403 and "only its own account" in refused.json()["error"]
    assert shared.status_code == 201 and shared.json()["account"] == issuer.api_key.account


def test_a_key_that_expires_issues_no_key_that_outlives_it() -> None:
    ends = timezone.now() + timedelta(days=1)
    client = manager("admin", permissions=(), expires_at=ends)

    forever = issue(client, name="forever", role="reader")
    later = issue(client, name="later", role="reader", expires="2d")
    sooner = issue(client, name="sooner", role="reader", expires="12h")

    assert forever.status_code == later.status_code == 403
    assert "the keys it issues must expire by then" in forever.json()["error"]
    assert sooner.status_code == 201


def test_a_key_revoked_a_moment_ago_issues_nothing(settings) -> None:
    # Given a manager whose principal is still cached in this process when it is revoked...
    settings.KV_API_KEY_CACHE_SECONDS = 60
    issued = apikeys.apikey_create(name="leaked", role="admin")
    client = client_of(issued.token)
    assert client.get(API).status_code == 200
    ApiKey.objects.filter(pk=issued.api_key.pk).update(revoked_at=timezone.now())  # another process revoked it

    # ...it may still read for the cache's few seconds, but not mint a key that outlives its revocation.
    response = issue(client, name="persistence", role="admin")

    assert response.status_code == 401
    assert not ApiKey.objects.filter(name="persistence").exists()


def test_a_key_sees_and_revokes_only_keys_within_its_authority(admin_client) -> None:
    admin = ApiKey.objects.get()
    client = manager("admin", permissions=(), scopes=("apikeys", "bucket:a-*"))
    own = issue(client, name="a-reader", role="reader", scopes=["bucket:a-x"]).json()

    listed = [key["name"] for key in client.get(API).json()["keys"]]
    refused = client.delete(f"{API}/{admin.pk}")

    assert listed == ["a-reader", "manager"]
    assert refused.status_code == 404
    assert ApiKey.objects.get(pk=admin.pk).revoked_at is None
    assert client.delete(f"{API}/{own['id']}").status_code == 204


def test_staff_sessions_manage_keys_with_csrf(django_user_model) -> None:
    from django.test import Client

    staff = django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    assert client.get(API).status_code == 200
    assert client.post(API, {"name": "x", "role": "reader"}, content_type="application/json").status_code == 403


# --- Audited ---------------------------------------------------------------------------------


def test_issue_and_revoke_are_audited_without_the_token(admin_client) -> None:
    start = AuditEvent.objects.count()

    token = issue(admin_client, name="ci", role="writer", scopes=["bucket:orders-*"], permissions=["metrics:read"])
    token = token.json()["token"]
    key = ApiKey.objects.get(name="ci")
    admin_client.delete(f"{API}/{key.pk}")
    issue(manager(name="small"), name="big", role="admin")

    events = list(AuditEvent.objects.order_by("id")[start:])
    rows = [(e.action, e.namespace, e.key_path, e.actor_name, e.success) for e in events]
    assert rows == [
        ("WRITE", "apikeys", "ci", "admin-key", True),
        ("DELETE", "apikeys", "ci", "admin-key", True),
        ("WRITE", "apikeys", "small", "kvsite", True),  # the fixture's own key, issued by the system
        ("WRITE", "apikeys", "big", "small", False),
    ]
    issued, revoked, _, refused = events
    assert issued.detail.startswith(f"issued key {key.pk} ({key.prefix}…); role writer; permissions metrics:read")
    assert "scopes bucket:orders-*" in issued.detail and f"account {key.account}" in issued.detail
    assert revoked.detail.startswith(f"revoked key {key.pk}")
    assert "permissions it does not hold" in refused.reason
    everything = str(list(AuditEvent.objects.values_list()))
    assert token not in everything and key.token_hash not in everything


def test_a_key_does_not_issue_without_its_audit_row(monkeypatch) -> None:
    from kvsite.access import audit

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(audit, "audit_record", broken)

    with pytest.raises(RuntimeError):
        apikeys.apikey_create(name="unrecorded", role="admin")

    assert not ApiKey.objects.filter(name="unrecorded").exists()


# --- The rules, one by one -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "limits", "within"),
    [
        ("bucket:a-x", ("bucket:a-*",), True),
        ("bucket:a-*", ("bucket:a-*",), True),
        ("bucket:a-b*", ("bucket:a-*",), True),
        ("bucket:a-[bc]*", ("bucket:a-*",), True),
        ("bucket:anything", ("bucket:*",), True),
        ("bucket:a*", ("bucket:a-*",), False),
        ("bucket:?-x", ("bucket:a-*",), False),
        ("bucket:a-x", ("bucket:a-?",), True),
        ("bucket:a-*", ("bucket:a-?",), False),
        ("bucket:a-x", ("config:*",), False),
        ("apikeys", ("apikeys",), True),
        ("metrics", ("apikeys",), False),
    ],
)
def test_scope_within(scope: str, limits: tuple[str, ...], within: bool) -> None:
    (parsed,) = scopes_parse([scope])

    assert apikeys.scope_within(parsed, scopes_parse(list(limits))) is within


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-06-01T08:30:00", datetime(2026, 6, 1, 8, 30, tzinfo=UTC)),
        ("2026-06-01T08:30:00+02:00", datetime(2026, 6, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_expiry_parse(text: str, moment: datetime) -> None:
    assert apikeys.expiry_parse(text, now=NOW) == moment


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-04-30", "is in the past"),
        ("0d", "give a lifetime"),
        ("-1d", "give a lifetime"),
        ("30", "give a lifetime"),
        ("30 days", "give a lifetime"),
        ("2026-13-01", "give a lifetime"),
        ("9999999d", "give a lifetime"),
        ("999999w", "give a lifetime"),  # past the calendar's end
        ("", "give a lifetime"),
    ],
)
def test_expiry_parse_refuses_saying_why(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        apikeys.expiry_parse(text, now=NOW)
