"""The storage core's notion of "now".

Expiry is decided against this clock, never the database's, so tests can move
time forward (``clock.set_offset``) and every process agrees on what expired.
"""

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    return timezone.now() + _offset


def set_offset(offset: timedelta) -> None:
    """Shift the clock (tests only)."""
    global _offset
    _offset = offset
