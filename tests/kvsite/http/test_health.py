"""Probes answer without authentication."""

import pytest
from django.test import Client

from kvsite import __version__

pytestmark = pytest.mark.django_db


def test_health_reports_ok_and_version() -> None:
    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_ready_when_the_database_answers() -> None:
    response = Client().get("/ready")

    assert response.status_code == 200
    assert response.json()["database"] == "ok"
