"""Start-up: production refuses to run without (valid) master keys; development makes one."""

import stat
import subprocess
from pathlib import Path

from tests.settings_probe import boot as boot_settings

from .conftest import KEY_NEW, KEY_OLD

ROOT = Path(__file__).resolve().parents[2]
PROBE = "from django.conf import settings; print(settings.KV_MASTER_KEYS.split(':')[0])"
PRODUCTION = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50}


def boot(**env: str) -> subprocess.CompletedProcess:
    return boot_settings(PROBE, **env)


def test_debug_off_without_master_keys_refuses_to_start() -> None:
    result = boot(**PRODUCTION)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "KV_MASTER_KEYS is unset" in result.stderr


def test_a_malformed_master_key_refuses_to_start_without_echoing_it() -> None:
    short = "k1:" + "QUJD" * 4  # 12 bytes

    result = boot(**PRODUCTION, KV_MASTER_KEYS=short)

    assert result.returncode != 0
    assert "key 'k1' decodes to 12 bytes" in result.stderr
    assert "QUJD" not in result.stderr


def test_malformed_keys_refuse_to_start_in_development_too(tmp_path) -> None:
    result = boot(KV_MASTER_KEYS="just-a-password", KV_MASTER_KEY_FILE=str(tmp_path / "master.key"))

    assert result.returncode != 0
    assert "not 'id:base64(32 bytes)'" in result.stderr
    assert not (tmp_path / "master.key").exists()


def test_debug_off_with_master_keys_starts_and_uses_the_first() -> None:
    result = boot(**PRODUCTION, KV_MASTER_KEYS=f"{KEY_NEW},{KEY_OLD}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "new"


def test_development_generates_a_private_key_file_once_with_a_loud_warning(tmp_path) -> None:
    key_file = tmp_path / "config" / "kvsite" / "master.key"

    first = boot(KV_MASTER_KEY_FILE=str(key_file))
    second = boot(KV_MASTER_KEY_FILE=str(key_file))

    assert first.returncode == 0, first.stderr
    assert "GENERATED a new DEVELOPMENT master key" in first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.returncode == 0, second.stderr
    assert "using the DEVELOPMENT master key" in second.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith("dev-")


def test_a_development_key_file_inside_the_repository_is_refused() -> None:
    result = boot(KV_MASTER_KEY_FILE=str(ROOT / "master.key"))

    assert result.returncode != 0
    assert "inside the repository" in result.stderr
    assert not (ROOT / "master.key").exists()
