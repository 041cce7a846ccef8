"""Write buckets with their full kept history as JSON Lines (secrets stay sealed)."""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from buckets.core.backup import export_lines
from buckets.core.exceptions import DomainError
from buckets.models import Bucket, Entry


class Command(BaseCommand):
    help = "Export buckets (internal names, e.g. APP_settings; default: all) as JSON Lines."

    def add_arguments(self, parser) -> None:
        parser.add_argument("buckets", nargs="*", help="internal bucket names (default: every bucket)")
        parser.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")

    def handle(self, *args, buckets: list[str], output: str, **options) -> None:
        rows = Entry.objects.filter(bucket__name__in=buckets) if buckets else Entry.objects.all()
        total = rows.count() + (len(buckets) or Bucket.objects.count())
        stream = self.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
        try:
            # The bar goes to stderr, and only on a terminal, so piped output stays clean.
            with tqdm(total=total, unit="line", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                for line in export_lines(names=buckets or None):
                    stream.write(line)
                    bar.update(1)
        except DomainError as error:
            raise CommandError(error.message) from error
        finally:
            if stream is not self.stdout:
                stream.close()
