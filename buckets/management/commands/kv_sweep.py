"""Remove expired entries: one pass, or ``--loop`` forever."""

import time

from django.core.management.base import BaseCommand

from buckets.sweeper import sweep_expired


class Command(BaseCommand):
    help = "Physically remove expired KV entries and bring bucket counters down."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep sweeping every --interval seconds")
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, loop: bool, interval: float, batch_size: int, **options) -> None:
        while True:
            report = sweep_expired(batch_size=batch_size)
            if report.entries_removed or not loop:
                self.stdout.write(
                    f"removed {report.entries_removed} expired entries ({report.keys_removed} keys) "
                    f"from {len(report.buckets)} buckets"
                )
            if not loop:
                return
            time.sleep(interval)
