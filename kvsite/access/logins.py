"""Sign-in throttling: failed password sign-ins counted per username and per client address.

The counters live in Django's cache: Redis in production, so every server process counts
together; the local-memory cache in development, one process. A counter's window opens at
its first failure and lasts ``KV_LOGIN_WINDOW_SECONDS``; once it holds the limit
(``KV_LOGIN_FAILURES_PER_USERNAME``, ``KV_LOGIN_FAILURES_PER_IP``), every sign-in for that
username or from that address is refused until the window closes, the right password
included, and without asking the password backend, so a refusal says nothing about the
password. Refused attempts are not counted: a window always closes on time. A successful
sign-in clears its username's counter (the person who knows the password is not locked out
by their own typos), never the address's. Usernames count case-insensitively.

If the cache fails, sign-in stays open and the failure is logged: locking every staff user
out while Redis is down would be worse than a brief gap in throttling.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

CACHE_PREFIX = "kvsite:login"
USERNAME = "username"
ADDRESS = "address"


@dataclass(frozen=True)
class LoginRefusal:
    """Why sign-in is refused: which counter is full, and for how many more seconds."""

    scope: str  # USERNAME or ADDRESS
    retry_after: int

    @property
    def message(self) -> str:
        """What the person signing in reads."""
        where = "for this username" if self.scope == USERNAME else "from your network address"
        unit = "second" if self.retry_after == 1 else "seconds"
        return f"Too many failed sign-in attempts {where}. Wait {self.retry_after} {unit}, then try again."

    @property
    def reason(self) -> str:
        """What the audit log records."""
        return f"too many failed sign-in attempts per {self.scope}; refused for {self.retry_after} s more"


def _counters(*, username: str, client_ip: str | None) -> list[tuple[str, str, int]]:
    """(scope, cache key, limit) of each counter in force for this attempt."""
    counters = []
    for scope, value, limit in (
        (USERNAME, username.strip().casefold(), settings.KV_LOGIN_FAILURES_PER_USERNAME),
        (ADDRESS, client_ip or "", settings.KV_LOGIN_FAILURES_PER_IP),
    ):
        if value and limit > 0:
            digest = hashlib.sha256(value.encode()).hexdigest()
            counters.append((scope, f"{CACHE_PREFIX}:{scope}:{digest}", limit))
    return counters


def login_refusal(*, username: str, client_ip: str | None) -> LoginRefusal | None:
    """The refusal in force for a sign-in as ``username`` from ``client_ip``, or None."""
    counters = _counters(username=username, client_ip=client_ip)
    try:
        held = cache.get_many([key for _, key, _ in counters] + [f"{key}:since" for _, key, _ in counters])
    except Exception:
        logger.exception("sign-in throttle: the cache failed; sign-in is not throttled meanwhile")
        return None
    window = settings.KV_LOGIN_WINDOW_SECONDS
    for scope, key, limit in counters:
        if held.get(key, 0) >= limit:
            since = held.get(f"{key}:since", time.time())
            return LoginRefusal(scope=scope, retry_after=max(1, math.ceil(since + window - time.time())))
    return None


def login_failure_record(*, username: str, client_ip: str | None) -> None:
    """Count a failed sign-in against ``username`` and ``client_ip``."""
    window = settings.KV_LOGIN_WINDOW_SECONDS
    try:
        for _, key, _ in _counters(username=username, client_ip=client_ip):
            # add() opens a window only where none is open; incr() is atomic on every backend.
            cache.add(f"{key}:since", time.time(), timeout=window)
            cache.add(key, 0, timeout=window)
            try:
                cache.incr(key)
            except ValueError:  # the window closed between the two calls: this failure opens the next
                cache.add(f"{key}:since", time.time(), timeout=window)
                cache.add(key, 1, timeout=window)
    except Exception:
        logger.exception("sign-in throttle: the cache failed; this failure was not counted")


def login_success_record(*, username: str) -> None:
    """Clear ``username``'s failures after a successful sign-in (its address's stay)."""
    keys = [key for scope, key, _ in _counters(username=username, client_ip=None) if scope == USERNAME]
    try:
        cache.delete_many(keys + [f"{key}:since" for key in keys])
    except Exception:
        logger.exception("sign-in throttle: the cache failed; the username's failures were not cleared")
