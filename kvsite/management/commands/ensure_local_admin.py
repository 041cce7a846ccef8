"""First-run set-up of a development instance: a local admin user and an admin API key, printed once."""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from kvsite.access.apikeys import apikey_create
from kvsite.access.audit import audit_actor_system
from kvsite.models import ApiKey

LOCAL_KEY_NAME = "local-admin"


@dataclass(frozen=True)
class LocalAdmin:
    """The local admin's credentials: the password and token only when they were made now (shown once)."""

    username: str
    password: str | None
    token: str | None


def local_admin_ensure(*, username: str = "admin") -> LocalAdmin:
    """Create the local admin user and admin API key if they do not exist yet."""
    User = get_user_model()
    password = None
    if not User.objects.filter(username=username).exists():
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
    token = None
    if not ApiKey.objects.filter(name=LOCAL_KEY_NAME, revoked_at__isnull=True).exists():
        actor = audit_actor_system(name="ensure_local_admin")
        token = apikey_create(name=LOCAL_KEY_NAME, role="admin", actor=actor).token
    return LocalAdmin(username=username, password=password, token=token)


def password_line(admin: LocalAdmin) -> str:
    if admin.password:
        return f"{admin.username} / {admin.password}   (shown once)"
    return f"{admin.username} (password set on the first run; reset: python manage.py changepassword {admin.username})"


def token_line(admin: LocalAdmin) -> str:
    if admin.token:
        return f"{admin.token}   (admin, shown once)"
    return f"{LOCAL_KEY_NAME!r} was issued on the first run (another: python manage.py createapikey NAME --role admin)"


class Command(BaseCommand):
    help = "Create the local admin user and admin API key if they do not exist yet; print them once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options) -> None:
        admin = local_admin_ensure(username=username)
        self.stdout.write(f"Admin user: {password_line(admin)}")
        self.stdout.write(f"Admin API key: {token_line(admin)}")
