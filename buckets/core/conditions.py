"""If-Match as the storage core evaluates it: the revisions a key may be at, or "any current value".

The core's compare-and-swap takes one revision (``if_revision``), checked under the
bucket lock by ``buckets.core.write_plan`` and its PostgreSQL twin. A condition naming
several revisions, or ``*``, is turned into one by ``store``: read the key's latest
entry, swap on the revision it is at if the condition accepts it, or on one that can
never match (so the store refuses, after its own checks, with its own 412). A key that
moves in between fails the swap and is judged again, so a write only ever lands on a
revision the condition accepts.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class IfMatch:
    """``revisions``: the key's latest entry (markers included, as NATS compares) must be at one of these.

    ``any_value`` (``If-Match: *``): the key must hold a live value instead.
    ``weak_tags``: the client also named weak entity-tags, which never match (kept
    only to say so in the refusal).
    """

    revisions: frozenset[int] = frozenset()
    any_value: bool = False
    weak_tags: bool = False

    def accepts(self, revision: int | None, *, live_value: bool) -> bool:
        """Whether a key whose latest entry is at ``revision`` (holding a live value or not) satisfies it."""
        if self.any_value:
            return live_value
        return revision in self.revisions

    @property
    def single_revision(self) -> int | None:
        """The one revision a plain compare-and-swap can check, when that is all the condition is."""
        if self.any_value or len(self.revisions) != 1:
            return None
        return next(iter(self.revisions))
