"""Restore buckets from a kv_export file exactly (revisions, timestamps, counters)."""

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from buckets.core.backup import import_lines
from buckets.core.exceptions import DomainError


class Command(BaseCommand):
    help = "Import a kv_export JSON Lines file; refuses to overwrite a non-empty bucket unless --replace."

    def add_arguments(self, parser) -> None:
        parser.add_argument("input", help="file to read, or - for stdin")
        parser.add_argument("--replace", action="store_true", help="replace buckets that already hold data")

    def handle(self, *args, input: str, replace: bool, **options) -> None:
        stream = sys.stdin if input == "-" else open(input, encoding="utf-8")  # noqa: SIM115
        size = os.fstat(stream.fileno()).st_size if stream is not sys.stdin else None
        try:
            with tqdm(total=size, unit="B", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

                def lines():
                    for line in stream:
                        bar.update(len(line.encode()))
                        yield line

                report = import_lines(lines=lines(), replace=replace)
        except DomainError as error:
            raise CommandError(error.message) from error
        finally:
            if stream is not sys.stdin:
                stream.close()
        for name, count in report.buckets.items():
            self.stdout.write(f"{name}: {count} entries restored")
