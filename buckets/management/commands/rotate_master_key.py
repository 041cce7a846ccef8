"""Re-seal every stored secret value under the first key of KV_MASTER_KEYS."""

from django.core.management.base import BaseCommand, CommandError

from buckets.core import sealing
from buckets.core.rotation import UNREADABLE, RotationReport, master_key_rotate, master_key_usage
from kvsite.access.audit import AuditedRotation, audit_actor_system


class Command(BaseCommand):
    help = (
        "Re-seal every kept secret value under the first key of KV_MASTER_KEYS, in batches, while the "
        "server keeps serving. Safe to interrupt and run again. Then reports how many values each key "
        "still seals: a key sealing none can be removed from KV_MASTER_KEYS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=200, help="values per transaction (default 200)")
        parser.add_argument("--check", action="store_true", help="only report which keys seal how many values")

    def handle(self, *args, batch_size: int, check: bool, **options) -> None:
        self.verbosity = options.get("verbosity", 1)
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        keyring = sealing.keyring_current()
        failures = 0
        if not check:
            self.stdout.write(f"Re-sealing under master key {keyring.primary.id!r}...")
            report = master_key_rotate(
                journal=AuditedRotation(audit_actor_system(name="rotate_master_key")),
                batch_size=batch_size,
                on_batch=self._progress,
            )
            failures = len(report.failures)
            self.stdout.write(f"Re-sealed {report.resealed} values in {report.batches} batches.")
            for bucket, key, entry_id, reason in report.failures:
                self.stderr.write(f"  cannot open {bucket}/{key} (entry {entry_id}): {reason}")
        usage = master_key_usage()
        self.stdout.write("Values sealed per master key:")
        for key_id in [*keyring.by_id, *sorted(set(usage) - set(keyring.by_id))]:
            if key_id == keyring.primary.id:
                note = " (first: seals new values)"
            elif key_id == UNREADABLE:
                note = " (corrupt: cannot be opened)"
            elif key_id not in keyring.by_id:
                note = " (NOT in KV_MASTER_KEYS: cannot be opened)"
            else:
                note = ""
            self.stdout.write(f"  {key_id}: {usage.get(key_id, 0)}{note}")
        removable = [key_id for key_id in keyring.by_id if key_id != keyring.primary.id and not usage.get(key_id)]
        if removable:
            self.stdout.write(f"No value is sealed under {', '.join(removable)}: safe to remove from KV_MASTER_KEYS.")
        if failures:
            raise CommandError(f"{failures} values could not be opened and were left as they are (see the audit log).")

    def _progress(self, report: RotationReport) -> None:
        if self.verbosity >= 2:
            self.stdout.write(f"  batch {report.batches}: {report.resealed} re-sealed so far")
