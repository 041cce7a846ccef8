"""RevisionOrder (buckets.core.fanout): a feed's events back in revision order, gaps filled from the database."""

from buckets.core.fanout import RevisionOrder


def event(revision: int, key: str = "k") -> dict:
    return {"type": "kv_update", "key": key, "revision": revision}


def revisions(events: list[dict]) -> list[int]:
    return [item["revision"] for item in events]


def test_events_in_order_pass_straight_through() -> None:
    order = RevisionOrder(last=4)

    assert revisions(order.offer(event(5))) == [5]
    assert revisions(order.offer(event(6))) == [6]
    assert order.waiting == 0


def test_an_early_event_waits_for_the_one_before_it() -> None:
    order = RevisionOrder(last=4)

    assert order.offer(event(6)) == []
    assert order.waiting == 1
    assert revisions(order.offer(event(5))) == [5, 6]
    assert order.last == 6
    assert order.waiting == 0


def test_duplicates_and_old_revisions_vanish() -> None:
    order = RevisionOrder(last=4)
    order.offer(event(5))

    assert order.offer(event(5)) == []
    assert order.offer(event(3)) == []
    order.offer(event(7))
    assert order.offer(event(7)) == []
    assert order.waiting == 1


def test_settle_fills_the_gap_from_the_database_and_skips_what_is_gone() -> None:
    # Given 6 and 9 arrived, 5, 7 and 8 did not; the database still keeps 5 and 8 (7 was trimmed).
    order = RevisionOrder(last=4)
    order.offer(event(6))
    order.offer(event(9))

    # When the gap is read through revision 9
    ready = order.settle(events=[event(5), event(6), event(8), event(9)], through=9)

    # Then everything kept comes out once, in order, and 7 is skipped
    assert revisions(ready) == [5, 6, 8, 9]
    assert order.last == 9
    assert order.waiting == 0


def test_settle_keeps_held_back_events_the_database_no_longer_has_and_releases_later_ones() -> None:
    order = RevisionOrder(last=1)
    order.offer(event(3))  # trimmed by the time the database is read
    order.offer(event(6))
    order.offer(event(7))

    ready = order.settle(events=[event(2), event(5)], through=5)

    assert revisions(ready) == [2, 3, 5, 6, 7]
    assert order.last == 7


def test_settle_with_a_pattern_filtered_read_still_moves_past_everything() -> None:
    order = RevisionOrder(last=0)
    order.offer(event(3, "other"))

    # The database read only returns matching keys: nothing here.
    ready = order.settle(events=[], through=4)

    assert revisions(ready) == [3]
    assert order.last == 4
    assert order.offer(event(4)) == []
