"""Issue an API key; the token is the last line of stdout and is shown only once."""

from django.core.management.base import BaseCommand, CommandError

from buckets.core.exceptions import DomainError
from kvsite.access.apikeys import apikey_create
from kvsite.access.permissions import ROLE_PERMISSIONS


class Command(BaseCommand):
    help = "Create an API key and print its token (only a hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_PERMISSIONS))
        parser.add_argument("--buckets", default="", help="glob of bucket names the key is limited to, e.g. 'orders-*'")
        parser.add_argument(
            "--account",
            default=None,
            help="owner of the key's items (/kv/items), shared by keys of one account (default: key-<id>, "
            "the key's own; name another key's key-<id> to share its items)",
        )

    def handle(self, *args, name: str, role: str, buckets: str, account: str | None, **options) -> None:
        try:
            issued = apikey_create(name=name, role=role, bucket_pattern=buckets, account=account)
        except DomainError as error:
            raise CommandError(error.message) from error
        scope = f" on buckets matching {buckets!r}" if buckets else ""
        self.stderr.write(
            f"Created {role} key {issued.api_key.name!r} ({issued.api_key.prefix}…){scope}, "
            f"account {issued.api_key.account!r}."
        )
        self.stderr.write("The token is shown once; store it now:")
        self.stdout.write(issued.token)
