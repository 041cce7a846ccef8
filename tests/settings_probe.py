"""Boot the settings in a fresh interpreter with a chosen environment (start-up refusals)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def boot(probe: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``probe`` after ``django.setup()`` with only ``env`` set among kvsite's variables."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "KV_MASTER_KEY"))
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "kvsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
