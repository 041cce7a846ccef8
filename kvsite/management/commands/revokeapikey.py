"""Revoke an API key named by its name, the start of its prefix, or its whole token."""

from django.core.management.base import BaseCommand, CommandError

from buckets.core.exceptions import DomainError
from kvsite.access.apikeys import apikey_find, apikey_revoke
from kvsite.access.audit import audit_actor_system
from kvsite.models import ApiKey


def _candidate(api_key: ApiKey) -> str:
    created = api_key.created_at.strftime("%Y-%m-%d %H:%M")
    return f"  {api_key.prefix}…  {api_key.name!r}  {api_key.role}  created {created}"


class Command(BaseCommand):
    help = (
        "Revoke an API key: it stops working at once in this process, within KV_API_KEY_CACHE_SECONDS in "
        "every server. Name it by its name or by its prefix (as listapikeys shows it); a name or prefix that "
        "fits several active keys revokes none and lists them. The revocation is recorded in the audit log."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name_or_prefix", metavar="NAME_OR_PREFIX")

    def handle(self, *args, name_or_prefix: str, **options) -> None:
        found = apikey_find(text=name_or_prefix)
        active = [api_key for api_key in found if api_key.revoked_at is None]
        if len(active) > 1:
            raise CommandError(
                f"{name_or_prefix!r} fits {len(active)} active keys; name one by its prefix:\n"
                + "\n".join(_candidate(api_key) for api_key in active)
            )
        if not active:
            if found:
                raise CommandError(f"{name_or_prefix!r} names only revoked keys; nothing to do")
            raise CommandError(f"no API key is named {name_or_prefix!r} or has a prefix starting with it")
        try:
            api_key = apikey_revoke(api_key_id=active[0].pk, actor=audit_actor_system(name="revokeapikey"))
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Revoked {api_key.role} key {api_key.name!r} ({api_key.prefix}…).")
