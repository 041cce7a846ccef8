"""Issue an API key; the token is the last line of stdout and is shown only once."""

import argparse

from django.core.management.base import BaseCommand, CommandError

from buckets.core.exceptions import DomainError
from kvsite.access.apikeys import apikey_create, expiry_parse
from kvsite.access.audit import audit_actor_system
from kvsite.access.permissions import ALL_PERMISSIONS, ROLE_PERMISSIONS

# What each permission allows, in the order the help lists them.
PERMISSIONS = {
    "kv-namespace:read": "list and read buckets and namespaces",
    "kv-namespace:write": "create and change buckets and namespaces",
    "kv-namespace:delete": "delete buckets and namespaces",
    "kv-entry:read": "read keys, namespace entries and items",
    "kv-entry:write": "write keys, namespace entries and items",
    "kv-entry:delete": "delete keys, namespace entries and items",
    "config:read": "read config documents",
    "config:write": "write, patch, roll back and delete config documents",
    "kv-secret:read": "reveal secret values (and list secrets)",
    "kv-secret:write": "create, change and delete secrets (and list them)",
    "kv-secret:rotate": "rotate and roll back entries of secret namespaces",
    "kv-audit:read": "read the audit log (GET /api/v1/audit)",
    "metrics:read": "read /metrics",
    "apikeys:manage": "list, issue and revoke keys (/api/v1/apikeys), none beyond its own",
}


def _roles() -> str:
    lines = []
    for role in ("reader", "writer", "admin", "none"):
        granted = ROLE_PERMISSIONS[role]
        if granted == ALL_PERMISSIONS:
            what = "every permission"
        elif not granted:
            what = "only those given with --permission"
        else:
            what = " ".join(name for name in PERMISSIONS if name in granted)
        lines.append(f"  {role:<8} {what}")
    return "\n".join(lines)


EPILOG = f"""
Roles (--role) grant these permissions; --permission adds more:
{_roles()}

Permissions:
{chr(10).join(f"  {name:<21} {what}" for name, what in PERMISSIONS.items())}

Scopes (--scope KIND:GLOB, repeatable) limit a key to resources of one kind whose public name
matches a glob; a scope of one kind grants nothing of another. A key without scopes reaches
everything its permissions allow.
  bucket:<name>           a bucket, by the name the bucket API uses   bucket:orders-*
  config:<environment>    config documents of an environment          config:prod
  secrets:<environment>   secrets of an environment                   secrets:prod
  namespace:<app>/<name>  a KV Service namespace                      namespace:billing/*
  items:<account>         an items account                            items:key-7
  audit | metrics | apikeys   the audit log, /metrics, key management (no names)

Examples:
  createapikey orders-app --role writer --scope bucket:orders-*
  createapikey prod-secrets --role none --permission kv-secret:read --scope secrets:prod --expires 30d
  createapikey scraper --role none --permission metrics:read --scope metrics
  createapikey key-admin --role none --permission apikeys:manage --expires 2027-01-01

The issue is recorded in the audit log (role, permissions, scopes; never the token).
See also: listapikeys, revokeapikey.
"""


class Command(BaseCommand):
    help = "Create an API key and print its token (only a hash is stored; the token is shown once)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> argparse.ArgumentParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = EPILOG
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="what the key is for (shown in listings and the audit log)")
        parser.add_argument(
            "--role",
            required=True,
            choices=sorted(ROLE_PERMISSIONS),
            help="the set of permissions the key starts with (see below)",
        )
        parser.add_argument(
            "--permission",
            action="append",
            default=[],
            metavar="PERMISSION",
            help="a permission beyond the role's (repeatable); see the list below",
        )
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="KIND:GLOB",
            help="limit the key to resources of KIND whose public name matches GLOB (repeatable)",
        )
        parser.add_argument(
            "--buckets",
            default="",
            metavar="GLOB",
            help="shorthand for --scope bucket:GLOB: the key reaches only buckets whose name matches",
        )
        parser.add_argument(
            "--account",
            default=None,
            help="owner of the key's items (/kv/items), shared by keys of one account (default: key-<id>, "
            "the key's own; name another key's key-<id> to share its items)",
        )
        parser.add_argument(
            "--expires",
            default=None,
            metavar="WHEN",
            help="when the key stops working: a lifetime (30d, 12h, 2w), a date (2027-01-01, at 00:00 UTC) or an "
            "ISO 8601 date-time (default: never)",
        )

    def handle(
        self,
        *args,
        name: str,
        role: str,
        permission: list[str],
        scope: list[str],
        buckets: str,
        account: str | None,
        expires: str | None,
        **options,
    ) -> None:
        scopes = [*scope, *([f"bucket:{buckets}"] if buckets else [])]
        try:
            issued = apikey_create(
                name=name,
                role=role,
                permissions=permission,
                scopes=scopes,
                account=account,
                expires_at=expiry_parse(expires) if expires is not None else None,
                actor=audit_actor_system(name="createapikey"),
            )
        except DomainError as error:
            raise CommandError(error.message) from error
        key = issued.api_key
        limits = f" limited to {', '.join(key.scopes)}" if key.scopes else ""
        extra = f" with {', '.join(key.permissions)}" if key.permissions else ""
        until = f", expires {key.expires_at.isoformat()}" if key.expires_at else ""
        self.stderr.write(
            f"Created {role} key {key.name!r} ({key.prefix}…){extra}{limits}, account {key.account!r}{until}."
        )
        self.stderr.write("The token is shown once; store it now:")
        self.stdout.write(issued.token)
