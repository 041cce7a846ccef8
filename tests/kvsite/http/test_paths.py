"""Where each server keeps a request path's bytes, and the UTF-8 judgement made from them (kvsite/http/paths.py)."""

from django.test import RequestFactory

from kvsite.http.paths import PATH_BYTES_KEY, WsgiPathBytes, path_bytes, path_is_utf8, query_is_utf8


def test_wsgi_path_bytes_keeps_the_servers_path_info_before_django_reads_it() -> None:
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    WsgiPathBytes(app)({"PATH_INFO": "/kv/items/pre\xffsuf"}, lambda *args: None)

    assert seen[PATH_BYTES_KEY] == "/kv/items/pre\xffsuf"


def test_the_path_bytes_come_from_the_kept_path_info_or_the_asgi_scope() -> None:
    factory = RequestFactory()
    wsgi = factory.get("/x", **{PATH_BYTES_KEY: "/kv/items/pre\xffsuf"})
    asgi = factory.get("/x", **{"asgi.scope": {"raw_path": b"/kv/items/pre%FF%C3%A9"}})
    valid = factory.get("/x", **{"asgi.scope": {"raw_path": b"/kv/items/pre%EF%BF%BD%25FF"}})

    assert path_bytes(wsgi) == b"/kv/items/pre\xffsuf" and not path_is_utf8(wsgi)
    assert path_bytes(asgi) == b"/kv/items/pre\xff\xc3\xa9" and not path_is_utf8(asgi)
    assert path_bytes(valid) == "/kv/items/pre\ufffd%FF".encode() and path_is_utf8(valid)
    # A server that keeps no record (Django's test client) cannot be judged: the path stands.
    assert path_bytes(factory.get("/x")) is None and path_is_utf8(factory.get("/x"))


def test_a_query_string_is_utf8_when_every_escape_spells_utf8() -> None:
    factory = RequestFactory()

    assert query_is_utf8(factory.get("/x", QUERY_STRING="prefix=pre%C3%A9&limit=5"))
    assert query_is_utf8(factory.get("/x", QUERY_STRING="prefix=%EF%BF%BD+x"))
    assert not query_is_utf8(factory.get("/x", QUERY_STRING="prefix=pre%FF"))
    assert not query_is_utf8(factory.get("/x", QUERY_STRING="limit=5&cursor=%ED%A0%80"))
