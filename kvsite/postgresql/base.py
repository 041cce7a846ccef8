"""Django's PostgreSQL backend, with the health check of an idle connection made free.

Django's ``CONN_HEALTH_CHECKS`` sends ``SELECT 1`` before the first query of every
request that reuses a persistent connection: on a key read, which is one query, that
doubled the round trips. Pooled connections (the ASGI server's) got no check at all,
so each one that PostgreSQL had ended while it sat in the pool failed a request with
a 503 after a database restart.

A server that restarts, or ends a backend (idle timeout, ``pg_terminate_backend``),
says so on the socket, which then turns readable while the connection is idle. So
both checks ask the kernel first (one ``poll`` with no timeout) and ping only when
something is waiting there. A connection dropped without a word (a network cut) is
not seen this way, nor was it by the ping, which would wait as long as the query: its
first query fails with a 503, and the connection is closed after that request.
"""

import select

import psycopg
from django.db.backends.postgresql import base


def _idle_socket_has_news(connection: psycopg.Connection) -> bool:
    """Whether the server sent anything (a shutdown notice, an EOF) to an idle connection."""
    if connection.closed:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _ended_by_server(connection: psycopg.Connection) -> bool:
    """Whether an idle connection is gone: the socket says something, and a ping fails."""
    if not _idle_socket_has_news(connection):
        return False
    try:
        connection.execute("SELECT 1")
    except psycopg.Error:
        return True
    return False


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if _ended_by_server(self.connection):
            self.close()
        self.health_check_done = True

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.pool:
            return connection
        # Every connection the pool holds may have been ended while it waited there.
        for _ in range(self.pool.max_size):
            if not _ended_by_server(connection):
                return connection
            connection.close()
            self.pool.putconn(connection)  # a closed connection is dropped, and the pool opens another
            connection = super().get_new_connection(conn_params)
        return connection
