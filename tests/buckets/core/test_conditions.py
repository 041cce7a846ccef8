"""If-Match of several revisions, or ``*``, in the storage core: a write lands only where the condition holds."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from buckets.core import store
from buckets.core.conditions import IfMatch
from buckets.core.exceptions import BucketNotFound, PreconditionFailed
from buckets.core.names import app_bucket

pytestmark = pytest.mark.django_db

B = app_bucket("cond")


@pytest.fixture
def key(make_bucket) -> str:
    """Key ``k`` of bucket ``cond``, at revision 1."""
    make_bucket("cond", history=10)
    store.entry_put(bucket=B, key="k", value=b"one")
    return "k"


@contextmanager
def another_writer_after_the_read(write: Callable[[], object], times: int = 1) -> Iterator[None]:
    """Runs ``write`` (another client's write) between the core's read of the key and its compare-and-swap."""
    state = {"armed": False, "left": times}

    def between(execute, sql, params, many, context):
        if state["armed"]:
            state["armed"] = False
            write()
        result = execute(sql, params, many, context)
        if sql == store._LATEST_STATE_SQL and state["left"]:
            state["armed"], state["left"] = True, state["left"] - 1
        return result

    with connection.execute_wrapper(between):
        yield


def history() -> list[tuple[int, str, bytes]]:
    return [(e.revision, e.operation, bytes(e.value)) for e in store.entry_history(bucket=B, key="k")]


def test_a_key_that_moves_to_another_listed_revision_is_written_there(key: str) -> None:
    with another_writer_after_the_read(lambda: store.entry_put(bucket=B, key=key, value=b"two")):
        written = store.entry_put(bucket=B, key=key, value=b"mine", if_match=IfMatch(revisions=frozenset({1, 2})))

    assert written.revision == 3
    assert history() == [(1, "put", b"one"), (2, "put", b"two"), (3, "put", b"mine")]


def test_a_key_that_moves_off_the_list_is_412_with_the_revision_it_moved_to(key: str) -> None:
    with (
        another_writer_after_the_read(lambda: store.entry_put(bucket=B, key=key, value=b"two")),
        pytest.raises(PreconditionFailed) as refused,
    ):
        store.entry_put(bucket=B, key=key, value=b"mine", if_match=IfMatch(revisions=frozenset({1, 5})))

    assert refused.value.details == {"current_revision": 2}
    assert history() == [(1, "put", b"one"), (2, "put", b"two")]


def test_star_is_412_once_the_value_is_deleted_under_it(key: str) -> None:
    with (
        another_writer_after_the_read(lambda: store.entry_delete(bucket=B, key=key)),
        pytest.raises(PreconditionFailed) as refused,
    ):
        store.entry_put(bucket=B, key=key, value=b"mine", if_match=IfMatch(any_value=True))

    assert refused.value.details == {"current_revision": 2}
    assert history() == [(1, "put", b"one"), (2, "delete", b"")]


def test_star_follows_a_value_replaced_under_it(key: str) -> None:
    with another_writer_after_the_read(lambda: store.entry_put(bucket=B, key=key, value=b"two")):
        written = store.entry_delete(bucket=B, key=key, if_match=IfMatch(any_value=True))

    assert written.revision == 3
    assert history() == [(1, "put", b"one"), (2, "put", b"two"), (3, "delete", b"")]


def test_a_key_that_keeps_moving_is_412_after_a_few_tries(key: str) -> None:
    revisions = iter(range(2, 100))

    def churn() -> None:
        store.entry_put(bucket=B, key=key, value=str(next(revisions)).encode())

    every = IfMatch(revisions=frozenset(range(1, 100)))
    with another_writer_after_the_read(churn, times=store.IF_MATCH_ATTEMPTS), pytest.raises(PreconditionFailed):
        store.entry_put(bucket=B, key=key, value=b"mine", if_match=every)

    assert store.entry_get(bucket=B, key=key).value != b"mine"


def test_a_condition_naming_no_revision_is_412_after_the_stores_own_checks(key: str) -> None:
    with pytest.raises(PreconditionFailed) as refused:
        store.entry_put(bucket=B, key=key, value=b"mine", if_match=IfMatch(weak_tags=True))

    assert refused.value.details == {"current_revision": 1}
    assert "weak" in refused.value.message
    with pytest.raises(BucketNotFound):
        store.entry_put(bucket=app_bucket("nope"), key=key, value=b"x", if_match=IfMatch(weak_tags=True))
