"""Master-key rotation: re-seal every kept value of every sealed bucket under the first master key.

Sealed buckets (``Bucket.sealed``, set at creation) are the secret environments and the
secret namespaces; rotation needs nothing else to find them.

Works bucket by bucket in short batches (``buckets.core.reseal.entries_reseal``), each
its own transaction under the bucket lock together with its journal record (the
command's ROTATE audit row),
so the server keeps serving: a writer waits for one batch at most, and a value
is readable under either key throughout (all configured keys open). A batch
rewrites only values not yet under the first key, so an interrupted run loses
nothing and the next run picks up where it stopped.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.db import transaction

from buckets.core import reseal, sealing
from buckets.core.exceptions import BucketNotFound, MasterKeyMissing, SealedValueUnreadable
from buckets.models import Bucket, Entry

UNREADABLE = "(not an envelope)"


class RotationJournal(Protocol):
    """What a rotation reports as it goes (the management command writes audit rows).

    ``resealed`` is called inside the batch's transaction, so its record commits with
    the re-sealed values or not at all; ``unreadable`` after it, for each value left alone.
    """

    def resealed(self, *, bucket: str, count: int, primary: str) -> None: ...

    def unreadable(self, *, bucket: str, key: str, entry_id: int, reason: str) -> None: ...


@dataclass
class RotationReport:
    primary: str
    resealed: int = 0
    batches: int = 0
    # (bucket, key, entry id, reason) of values that could not be opened.
    failures: list[tuple[str, str, int, str]] = field(default_factory=list)


def master_key_usage() -> dict[str, int]:
    """How many kept sealed values each master key id seals (whether configured or not)."""
    counts: Counter[str] = Counter()
    for _, value in reseal.sealed_values_scan():
        counts[sealing.envelope_key_id(envelope=value) or UNREADABLE] += 1
    return dict(counts)


def _bucket_rotate(
    *,
    bucket: str,
    primary: str,
    batch_size: int,
    journal: RotationJournal,
    report: RotationReport,
    on_batch: Callable[[RotationReport], None],
) -> None:
    failures: list[tuple[Entry, str]] = []

    def transform(entry: Entry) -> bytes | None:
        if sealing.envelope_key_id(envelope=entry.value) == primary:
            return None
        try:
            return sealing.value_reseal(envelope=entry.value, bucket=bucket, key=entry.key)
        except (SealedValueUnreadable, MasterKeyMissing) as error:
            failures.append((entry, error.message))
            return None

    after_id: int | None = 0
    while after_id is not None:
        failures.clear()
        try:
            with transaction.atomic():
                batch = reseal.entries_reseal(bucket=bucket, transform=transform, after_id=after_id, limit=batch_size)
                if batch.rewritten:
                    journal.resealed(bucket=bucket, count=batch.rewritten, primary=primary)
        except BucketNotFound:
            return  # deleted while we were rotating: nothing left to re-seal
        for entry, reason in failures:
            journal.unreadable(bucket=bucket, key=entry.key, entry_id=entry.id, reason=reason)
            report.failures.append((bucket, entry.key, entry.id, reason))
        report.resealed += batch.rewritten
        report.batches += 1
        after_id = batch.next_after_id
        on_batch(report)


def master_key_rotate(
    *, journal: RotationJournal, batch_size: int = 200, on_batch: Callable[[RotationReport], None] | None = None
) -> RotationReport:
    """Re-seal every kept value of every sealed bucket under the first configured master key."""
    primary = sealing.keyring_current().primary.id
    report = RotationReport(primary=primary)
    names = list(Bucket.objects.filter(sealed=True).order_by("name").values_list("name", flat=True))
    for bucket in names:
        _bucket_rotate(
            bucket=bucket,
            primary=primary,
            batch_size=batch_size,
            journal=journal,
            report=report,
            on_batch=on_batch or (lambda _report: None),
        )
    return report
