"""The Audit page (``/audit``): filters and paging over the audit log."""

import re

from kvsite.access.audit import audit_actor_system
from secrets_app import services as secrets

from .conftest import page_text


def test_audit_page_filters_and_pages(staff_client, world):
    for _ in range(60):
        secrets.secret_reveal(environment="prod", name="db/password", actor=audit_actor_system(name="bot"))

    first = page_text(staff_client.get("/audit?action=REVEAL&actor=bot&namespace=secrets:prod"))
    assert first.count('<tr data-action="REVEAL">') == 50
    assert "secrets:prod" in first and "SYS_secrets_prod" not in first
    older = re.search(r'href="(\?[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")

    second = page_text(staff_client.get("/audit" + older))
    assert second.count('<tr data-action="REVEAL">') == 10
    assert 'rel="prev"' in second

    assert "No audit events match" in page_text(staff_client.get("/audit?actor=nobody"))
    assert "Check the filters" in page_text(staff_client.get("/audit?since=yesterday"))
