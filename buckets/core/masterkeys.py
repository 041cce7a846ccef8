"""Master keys: parsing ``KV_MASTER_KEYS`` and the development key file.

Imported by ``kvsite/settings.py`` at start-up, so it must not touch Django's
settings or app registry: it takes everything it needs as arguments.

``KV_MASTER_KEYS`` is a comma-separated list of ``id:base64(32 bytes)``. The
first key seals every new value; all of them open values. Error messages name
the entry by position and id, never the key material.
"""

import base64
import binascii
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class MasterKey:
    id: str
    key: bytes

    def __repr__(self) -> str:
        # Never let key material reach a log line or a traceback.
        return f"MasterKey(id={self.id!r})"


def master_keys_parse(*, raw: str, source: str = "KV_MASTER_KEYS") -> list[MasterKey]:
    """Parse ``id:base64,...``; ImproperlyConfigured names what is wrong (not the key)."""
    keys: list[MasterKey] = []
    items = [item.strip() for item in raw.split(",")]
    for position, item in enumerate((item for item in items if item), start=1):
        key_id, separator, encoded = item.partition(":")
        key_id = key_id.strip()
        if not separator:
            raise ImproperlyConfigured(f"{source}: entry {position} is not 'id:base64(32 bytes)'.")
        if not _ID_RE.match(key_id):
            raise ImproperlyConfigured(
                f"{source}: entry {position} has an invalid id; ids are 1-32 letters, digits, '.', '_' or '-'."
            )
        try:
            material = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{source}: key {key_id!r} is not valid base64.") from None
        if len(material) != KEY_BYTES:
            raise ImproperlyConfigured(
                f"{source}: key {key_id!r} decodes to {len(material)} bytes; AES-256 needs {KEY_BYTES}."
            )
        if any(existing.id == key_id for existing in keys):
            raise ImproperlyConfigured(f"{source}: key id {key_id!r} appears twice.")
        keys.append(MasterKey(id=key_id, key=material))
    return keys


def master_key_format(*, key: MasterKey) -> str:
    return f"{key.id}:{base64.b64encode(key.key).decode()}"


def master_key_generate(*, key_id: str | None = None) -> MasterKey:
    return MasterKey(id=key_id or f"dev-{secrets.token_hex(3)}", key=secrets.token_bytes(KEY_BYTES))


def _development_key_file(*, path: Path, base_dir: Path) -> str:
    """Read the development key file, creating it (mode 0600) on first use."""
    path = path.expanduser().resolve()
    if path.is_relative_to(base_dir.resolve()):
        # A key inside the work tree is one `git add .` away from being published.
        raise ImproperlyConfigured(f"KV_MASTER_KEY_FILE {path} is inside the repository; put it outside {base_dir}.")
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(master_key_format(key=master_key_generate()) + "\n")
            created = True
    raw = path.read_text().strip()
    master_keys_parse(raw=raw, source=f"master key file {path}")
    action = "GENERATED a new" if created else "is using the"
    # One line on stderr, once per process (logged before logging is configured: the last-resort handler).
    logging.getLogger("kvsite.development").warning(
        "kvsite %s DEVELOPMENT master key in %s (KV_MASTER_KEYS is unset and DJANGO_DEBUG is on): secrets sealed "
        "with it are only as safe as that file. Production must set KV_MASTER_KEYS.",
        action,
        path,
    )
    return raw


def master_keys_configure(*, raw: str, debug: bool, key_file: Path, base_dir: Path) -> str:
    """The validated ``KV_MASTER_KEYS`` value for settings; refuses to start without keys in production."""
    if raw.strip():
        master_keys_parse(raw=raw)
        return raw.strip()
    if not debug:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off but KV_MASTER_KEYS is unset. Set it to 'id:base64(32 random bytes)', e.g. "
            "KV_MASTER_KEYS=k1:$(python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
        )
    return _development_key_file(path=key_file, base_dir=base_dir)
