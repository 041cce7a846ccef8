"""The Secrets pages (``/secrets``, ``/secrets/<env>/<name>``).

Masked listings by namespace, an audited reveal, rotate, roll back, create and delete.
"""

from kvsite.access.audit import audit_actor_system
from kvsite.models import AuditEvent
from secrets_app import services as secrets

from .conftest import PLAINTEXT, page_text


def test_secret_values_are_masked_in_listings(staff_client, world):
    body = page_text(staff_client.get("/secrets?env=prod"))

    assert "db/password" in body and "••••••••" in body
    assert PLAINTEXT not in body
    assert "SYS_" not in body
    assert PLAINTEXT not in page_text(staff_client.get("/secrets/prod/db/password"))


def test_secrets_are_grouped_by_namespace(staff_client, world):
    actor = audit_actor_system(name="tests")
    secrets.secret_create(environment="prod", name="stripe/key", value="sk", actor=actor)
    secrets.secret_create(environment="prod", name="plain", value="p", actor=actor)

    every = page_text(staff_client.get("/secrets?env=prod"))
    assert ">db/</a>" in every and ">stripe/</a>" in every
    assert every.count("<tr data-secret=") == 3

    stripe = page_text(staff_client.get("/secrets?env=prod&ns=stripe"))
    assert 'data-secret="stripe/key"' in stripe and 'data-secret="db/password"' not in stripe


def test_reveal_shows_the_value_and_is_audited(staff_client, world):
    response = staff_client.post(
        "/secrets/prod/db/password", {"action": "reveal", "dom_id": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = page_text(response)
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

    page = page_text(staff_client.get("/secrets/prod/db/password"))
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
    listing = page_text(staff_client.get("/secrets?env=staging"))
    assert "api/token" in listing and "3rd party" in listing and "s3cr3t" not in listing

    deleted = staff_client.post("/secrets/staging/api/token", {"action": "delete"})
    assert deleted.status_code == 302
    assert 'data-secret="api/token"' not in page_text(staff_client.get("/secrets?env=staging"))


def test_a_malformed_environment_is_a_400_page_that_names_no_api_header(staff_client, world):
    response = staff_client.get("/secrets/not%20an%20id/db/password")

    assert response.status_code == 400
    assert "environment id must be 1-64 letters" in page_text(response)
    assert "X-Ironflow" not in page_text(response)
