"""Change events: a sealed bucket's never carry its values, whatever the bucket is called."""

import pytest

from buckets.core import bulk, events, replay, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[events.ChangeEvent]:
    sent: list[events.ChangeEvent] = []
    # Single writes publish through events.publish_many too; bulk holds its own reference.
    for module in (events, bulk):
        monkeypatch.setattr(module, "publish_many", lambda group, batch: sent.extend(batch))
    return sent


@pytest.mark.parametrize(("name", "sealed"), [("SYS_vault_x", True), ("SYS_secrets_lookalike", False)])
def test_events_carry_a_value_unless_the_bucket_is_sealed(
    name: str, sealed: bool, published, django_capture_on_commit_callbacks
) -> None:
    """Given a sealed bucket with no secret-like name and an unsealed one named like a secret
    environment, when keys are written one by one and in bulk, then only the unsealed bucket's
    events carry values, live and replayed (before, the name decided: both ways wrong here)."""
    store.bucket_create(name=name, sealed=sealed)
    with django_capture_on_commit_callbacks(execute=True):
        store.entry_put(bucket=name, key="one", value=b"v1")
        bulk.entries_write_many(bucket=name, writes=[bulk.BulkWrite(key="two", value=b"v2")])
    replayed = replay.change_events_after(bucket=name, after=0, through=2)

    expected = ["", ""] if sealed else ["djE=", "djI="]
    assert [event["value"] for event in published] == expected
    assert [event["value"] for event in replayed] == expected
