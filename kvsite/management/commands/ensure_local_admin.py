"""First-run set-up for `make run`: a local admin user and an admin API key, printed once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from kvsite.access.apikeys import apikey_create
from kvsite.access.audit import audit_actor_system
from kvsite.models import ApiKey

LOCAL_KEY_NAME = "local-admin"


class Command(BaseCommand):
    help = "Create the local admin user and admin API key if they do not exist yet; print them once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists (reset: python manage.py changepassword {username}).")
        else:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(f"Admin user: {username}   password: {password}   (shown once)"))
        if ApiKey.objects.filter(name=LOCAL_KEY_NAME, revoked_at__isnull=True).exists():
            self.stdout.write(
                f"API key {LOCAL_KEY_NAME!r} exists (new one: python manage.py createapikey NAME --role admin)."
            )
        else:
            issued = apikey_create(
                name=LOCAL_KEY_NAME, role="admin", actor=audit_actor_system(name="ensure_local_admin")
            )
            self.stdout.write(self.style.SUCCESS(f"Admin API key: {issued.token}   (shown once)"))
