"""Issue an API key; the token is the last line of stdout and is shown only once."""

import argparse

from django.core.management.base import BaseCommand, CommandError

from buckets.core.exceptions import DomainError
from kvsite.access.apikeys import apikey_create
from kvsite.access.guard import KINDS
from kvsite.access.permissions import ALL_PERMISSIONS, ROLE_PERMISSIONS

EPILOG = f"""
Permissions (a role grants a set; --permission adds one, and role 'none' grants only those):
  {", ".join(sorted(ALL_PERMISSIONS))}
Roles: reader, writer, admin (every permission), none.

Scopes limit a key to resources of one kind whose public name matches a glob; a scope of one
kind grants nothing of another. Kinds: {", ".join(sorted(KINDS))}.
  bucket:<name>         a bucket by the name the bucket API uses     bucket:orders-*
  config:<environment>  config documents of an environment            config:prod
  secrets:<environment> secrets of an environment                     secrets:prod
  namespace:<app>/<name> a KV Service namespace                       namespace:billing/*
  items:<account>       an items account                              items:key-7
  audit, metrics, apikeys   the audit log, /metrics, key management (no names)
A key without scopes reaches everything its permissions allow.

Examples:
  createapikey orders-app --role writer --scope bucket:orders-*
  createapikey prod-secrets --role none --permission kv-secret:read --scope secrets:prod
  createapikey scraper --role none --permission metrics:read
"""


class Command(BaseCommand):
    help = "Create an API key and print its token (only a hash is stored)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> argparse.ArgumentParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = EPILOG
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_PERMISSIONS))
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

    def handle(
        self,
        *args,
        name: str,
        role: str,
        permission: list[str],
        scope: list[str],
        buckets: str,
        account: str | None,
        **options,
    ) -> None:
        scopes = [*scope, *([f"bucket:{buckets}"] if buckets else [])]
        try:
            issued = apikey_create(name=name, role=role, permissions=permission, scopes=scopes, account=account)
        except DomainError as error:
            raise CommandError(error.message) from error
        key = issued.api_key
        limits = f" limited to {', '.join(key.scopes)}" if key.scopes else ""
        extra = f" with {', '.join(key.permissions)}" if key.permissions else ""
        self.stderr.write(f"Created {role} key {key.name!r} ({key.prefix}…){extra}{limits}, account {key.account!r}.")
        self.stderr.write("The token is shown once; store it now:")
        self.stdout.write(issued.token)
