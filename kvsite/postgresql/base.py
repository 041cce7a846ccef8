"""Django's PostgreSQL backend, with a persistent connection's health check made free.

Django's ``CONN_HEALTH_CHECKS`` sends ``SELECT 1`` before the first query of every
request that reuses a connection: on a key read, which is one query, that doubled the
round trips. A server that restarts, or that ends a backend (idle timeout,
``pg_terminate_backend``), says so on the socket, which then turns readable while the
connection is idle. So the check asks the kernel first (one ``poll`` with no timeout)
and only pings when something is waiting there; a connection with nothing to read is
used as it is. A silently dropped connection is not seen without a ping, nor was it
with one (the ping would wait as long as the query): its first query fails with a 503
and Django closes it at the end of that request.
"""

import select

from django.db.backends.postgresql import base


def _idle_socket_has_news(connection) -> bool:
    """Whether the server sent anything (a shutdown notice, an EOF) to an idle connection."""
    if connection.closed:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if _idle_socket_has_news(self.connection) and not self.is_usable():
            self.close()
        self.health_check_done = True
