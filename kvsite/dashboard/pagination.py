"""Going back through cursor-paged listings.

A cursor only leads forward, so each "next" link carries the trail of cursors
that led to it ("previous" pops one). Cursors are URL-safe base64, so ``.``
separates them and ``~`` stands for the first page. The trail is capped; past
the cap the oldest steps are forgotten and "previous" ends at the first page.
"""

FIRST_PAGE = "~"
MAX_STEPS = 100


def trail_push(trail: str, cursor: str | None) -> str:
    """The trail for the page after the one at ``cursor`` (None: the first page)."""
    steps = trail.split(".") if trail else []
    steps.append(cursor or FIRST_PAGE)
    return ".".join(steps[-MAX_STEPS:])


def trail_pop(trail: str) -> tuple[str | None, str]:
    """``(cursor of the previous page or None for the first, the trail that page had)``."""
    steps = trail.split(".") if trail else []
    if not steps:
        return None, ""
    last = steps.pop()
    return (None if last == FIRST_PAGE else last), ".".join(steps)
