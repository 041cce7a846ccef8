"""Remove expired entries and old delete markers: one pass, or ``--loop`` forever."""

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from buckets.core.sweeper import SweepReport, purge_deletes, sweep_expired
from buckets.items.services import items_bucket_prefix


class Command(BaseCommand):
    help = (
        "Physically remove expired KV entries and bring bucket counters down; drop the delete "
        "markers of the items API after KV_ITEMS_MARKER_RETENTION_SECONDS, and of every bucket "
        "with --purge-deletes-older-than (NATS' PurgeDeletes)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep sweeping every --interval seconds")
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--purge-deletes-older-than",
            type=int,
            metavar="SECONDS",
            help="also remove, in every bucket, keys whose latest entry is a delete or purge marker this old",
        )

    def handle(
        self,
        *args,
        loop: bool,
        interval: float,
        batch_size: int,
        purge_deletes_older_than: int | None,
        **options,
    ) -> None:
        if purge_deletes_older_than is not None and purge_deletes_older_than < 0:
            raise CommandError("--purge-deletes-older-than must be 0 or more seconds")
        while True:
            expired = sweep_expired(batch_size=batch_size)
            markers = self._purge_markers(purge_deletes_older_than, batch_size)
            if expired.entries_removed or markers.entries_removed or not loop:
                self.stdout.write(
                    f"removed {expired.entries_removed} expired entries ({expired.keys_removed} keys) "
                    f"from {len(expired.buckets)} buckets; {markers.keys_removed} deleted keys "
                    f"({markers.entries_removed} entries) past their marker retention"
                )
            if not loop:
                return
            time.sleep(interval)

    def _purge_markers(self, older_than: int | None, batch_size: int) -> SweepReport:
        report = purge_deletes(
            older_than=timedelta(seconds=settings.KV_ITEMS_MARKER_RETENTION_SECONDS),
            name_prefix=items_bucket_prefix(),
            batch_size=batch_size,
        )
        if older_than is not None:
            everywhere = purge_deletes(older_than=timedelta(seconds=older_than), batch_size=batch_size)
            report.entries_removed += everywhere.entries_removed
            report.keys_removed += everywhere.keys_removed
        return report
