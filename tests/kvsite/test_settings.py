"""Settings come from the environment; production refuses unsafe ones."""

import base64
import subprocess

from tests.settings_probe import boot as boot_settings

PROBE = "from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS)"


def boot(**env: str) -> subprocess.CompletedProcess:
    return boot_settings(PROBE, **env)


def test_development_defaults_need_no_environment() -> None:
    result = boot()

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True")


def test_debug_off_refuses_the_development_secret_key() -> None:
    result = boot(DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_refuses_a_short_secret_key() -> None:
    # Everything else production needs is valid, so the short key is the only reason to refuse.
    result = boot(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 31,
        KV_MASTER_KEYS="k1:" + base64.b64encode(bytes(32)).decode(),
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_with_a_real_secret_key_starts(tmp_path) -> None:
    result = boot(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="kv.example.com, api.example.com",
        KV_MASTER_KEYS="k1:" + base64.b64encode(bytes(32)).decode(),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['kv.example.com', 'api.example.com']"


def test_a_malformed_allowed_origin_stops_start_up() -> None:
    result = boot(KV_ALLOWED_ORIGINS="https://app.example.com, app.example.com")

    assert result.returncode != 0
    assert "KV_ALLOWED_ORIGINS: 'app.example.com' is not an origin" in result.stderr
