"""``make run``: migrate, make the local admin, serve HTTP and WebSocket, and say how to get in, once.

One process does it all, so each development notice is printed once (at start-up), and
the last thing on the terminal is one block: where the dashboard and the API are, the
admin's credentials (the password and API key only on the first run) and a first request.
It is printed when the server is listening, so every link in it works.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from uvicorn import Config, Server

from kvsite.management.commands.ensure_local_admin import LocalAdmin, local_admin_ensure, password_line, token_line


def welcome(*, url: str, admin: LocalAdmin) -> str:
    """The block ``make run`` ends with."""
    rule = "─" * 78
    token = admin.token or "kvs_…"
    bearer = '-H "Authorization: Bearer $KVSITE_TOKEN"'
    lines = [
        rule,
        f"  kvsite is running at {url}/   (Ctrl+C stops it)",
        "",
        f"  Dashboard   {url}/",
        f"  Sign in     {password_line(admin)}",
        f"  API key     {token_line(admin)}",
        f"  API docs    {url}/api/v1/kv/swagger-ui",
        "",
        "  Try it:",
        f"    export KVSITE_TOKEN={token}",
        f"    curl -X POST {url}/api/v1/kv/buckets {bearer} \\",
        "         -H 'Content-Type: application/json' -d '{\"name\": \"settings\"}'",
        f"    curl -X PUT {url}/api/v1/kv/buckets/settings/keys/theme {bearer} -d dark",
        f"    curl -s {url}/api/v1/kv/buckets/settings/keys/theme {bearer} \\",
        "         | jq -r .value | base64 -d",
        "",
        "  This is the development profile (debug on, SQLite, one process): see README,",
        "  'Running in production', before anyone else depends on it.",
        rule,
    ]
    return "\n".join(lines)


class WelcomingServer(Server):
    """uvicorn's server, which prints ``message`` once it listens."""

    def __init__(self, config: Config, *, message: str) -> None:
        super().__init__(config)
        self.message = message

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self.message, flush=True)


class Command(BaseCommand):
    help = "Migrate, create the local admin user and API key (printed once), and serve HTTP and WebSocket (make run)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--username", default="admin")

    def handle(self, *args, host: str, port: int, username: str, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        admin = local_admin_ensure(username=username)
        shown_host = f"[{host}]" if ":" in host else host
        config = Config("kvsite.asgi:application", host=host, port=port, lifespan="off", log_level="info")
        server = WelcomingServer(config, message=welcome(url=f"http://{shown_host}:{port}", admin=admin))
        server.run()
