"""List API keys: what each may do and reach, and when it was used; never a token or its hash."""

from datetime import datetime

from django.core.management.base import BaseCommand
from django.utils import timezone

from kvsite.access.apikeys import apikey_list
from kvsite.models import ApiKey

COLUMNS = ("name", "prefix", "role", "permissions", "scopes", "account", "created", "last used", "expires", "revoked")


def _moment(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _row(api_key: ApiKey) -> tuple[str, ...]:
    return (
        api_key.name,
        f"{api_key.prefix}…",
        api_key.role,
        ",".join(api_key.permissions) or "-",
        ",".join(api_key.scopes) or "(all)",
        api_key.account,
        _moment(api_key.created_at),
        _moment(api_key.last_used_at),
        _moment(api_key.expires_at),
        _moment(api_key.revoked_at),
    )


class Command(BaseCommand):
    help = (
        "List API keys, active first, newest first: name, prefix, role, extra permissions, scopes "
        "('(all)': unrestricted), items account, and when each was created, last used, expires and was "
        "revoked (UTC). Tokens are never stored, so never shown."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--active", action="store_true", help="leave out revoked and expired keys")

    def handle(self, *args, active: bool, **options) -> None:
        keys = apikey_list()
        if active:
            now = timezone.now()
            keys = [k for k in keys if k.revoked_at is None and (k.expires_at is None or k.expires_at > now)]
        rows = [COLUMNS, *(_row(api_key) for api_key in keys)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if not keys:
            self.stdout.write("(no keys)")
