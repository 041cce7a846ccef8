"""The Config pages (``/config``, ``/config/<env>/<name>``).

Documents per environment, feature-flag switches, the compare-and-swap editor,
history, rollback and delete.
"""

import pytest

from buckets.configs import services as configs
from kvsite.access.audit import audit_actor_system
from kvsite.models import AuditEvent

from .conftest import page_text


def test_config_page_lists_documents_and_environments(staff_client, world):
    body = page_text(staff_client.get("/config"))

    assert "flags" in body and ">default<" in body
    assert "SYS_" not in body


def test_create_config_document_validates_json(staff_client, db):
    bad = staff_client.post("/config", {"environment": "staging", "name": "app", "data": "[1, 2]"})
    assert "must be a JSON object" in page_text(bad)

    good = staff_client.post("/config", {"environment": "staging", "name": "app", "data": '{"debug": true}'})
    assert good.status_code == 302
    assert configs.config_get(environment="staging", name="app").data == {"debug": True}


def test_document_page_shows_top_level_booleans_as_switches(staff_client, world):
    body = page_text(staff_client.get("/config/default/flags"))

    assert body.count('role="switch"') == 2
    assert 'data-flag="beta"' in body and 'data-flag="search"' in body
    assert 'data-flag="theme"' not in body


def test_a_switch_saves_with_one_click(staff_client, world):
    response = staff_client.post(
        "/config/default/flags", {"action": "toggle", "flag": "beta", "value": "true"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    body = page_text(response)
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

    assert "not a feature flag" in page_text(response)
    assert configs.config_get(environment="default", name="flags").revision == 1


def test_config_editor_saves_with_compare_and_swap(staff_client, world):
    saved = staff_client.post("/config/default/flags", {"action": "save", "data": '{"beta": true}', "revision": 1})
    assert saved.status_code == 302
    assert configs.config_get(environment="default", name="flags").data == {"beta": True}

    conflict = staff_client.post("/config/default/flags", {"action": "save", "data": '{"beta": false}', "revision": 1})
    body = page_text(conflict)
    assert "Someone else saved this document meanwhile" in body
    assert 'name="revision" value="2"' in body
    assert configs.config_get(environment="default", name="flags").data == {"beta": True}

    invalid = staff_client.post("/config/default/flags", {"action": "save", "data": "{nope", "revision": 2})
    assert "This text is not valid JSON" in page_text(invalid)


def test_saving_what_the_document_holds_writes_nothing(staff_client, world):
    # The same data as stored, spaced differently.
    same = '{ "beta" : false, "theme": "dark", "search": true }'

    response = staff_client.post("/config/default/flags", {"action": "save", "data": same, "revision": 1}, follow=True)

    assert "No changes — nothing saved." in page_text(response)
    assert configs.config_get(environment="default", name="flags").revision == 1


def test_the_page_hands_its_script_the_document_as_text_with_exact_numbers(staff_client, world):
    document = '{"orderId": 12345678901234567890, "beta": false}'
    staff_client.post("/config", {"environment": "default", "name": "orders", "data": document})

    page = page_text(staff_client.get("/config/default/orders"))

    assert '<script id="config-live-text" type="application/json">"{\\n  \\"orderId\\": 12345678901234567890,' in page


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
    assert error in page_text(saved) and error in page_text(created)
    assert configs.config_get(environment="default", name="flags").revision == 1
    assert [doc.name for doc in configs.config_list(environment="default")] == ["flags"]


def test_config_history_view_and_rollback(staff_client, world):
    configs.config_patch(
        environment="default", name="flags", patch={"beta": True}, actor=audit_actor_system(name="tests")
    )

    view = page_text(staff_client.get("/config/default/flags?rev=1"))
    assert "Changes from revision 1 to the current one" in view

    rolled = staff_client.post("/config/default/flags", {"action": "rollback", "revision": 1})
    assert rolled.status_code == 302
    document = configs.config_get(environment="default", name="flags")
    assert (document.revision, document.data["beta"]) == (3, False)


def test_config_delete_with_confirmation(staff_client, world):
    assert "Yes, delete" in page_text(staff_client.get("/config/default/flags?confirm=delete"))

    response = staff_client.post("/config/default/flags", {"action": "delete", "revision": 1})

    assert response.status_code == 302
    assert configs.config_list(environment="default") == []


def test_every_change_made_on_the_pages_is_audited_as_the_staff_user(staff_client, staff, world):
    staff_client.post("/config", {"environment": "default", "name": "app", "data": '{"debug": true}'})
    staff_client.post("/config/default/flags", {"action": "toggle", "flag": "beta", "value": "true"})
    revision = configs.config_get(environment="default", name="flags").revision
    staff_client.post("/config/default/flags", {"action": "save", "data": '{"beta": false}', "revision": revision})
    staff_client.post("/config/default/flags", {"action": "rollback", "revision": 1})
    revision = configs.config_get(environment="default", name="flags").revision
    staff_client.post("/config/default/flags", {"action": "delete", "revision": revision})

    events = AuditEvent.objects.filter(actor_type="user").order_by("id")
    assert [(e.action, e.namespace, e.key_path, e.detail, e.success) for e in events] == [
        ("WRITE", "config:default", "app", "whole document", True),
        ("WRITE", "config:default", "flags", "merge patch", True),
        ("WRITE", "config:default", "flags", "whole document", True),
        ("ROLLBACK", "config:default", "flags", "to the data of revision 1", True),
        ("DELETE", "config:default", "flags", "", True),
    ]
    assert {(e.actor_id, e.actor_name) for e in events} == {(str(staff.pk), "ops")}
