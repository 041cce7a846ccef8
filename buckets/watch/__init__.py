"""The watch protocol every dialect's WebSocket speaks, on the core's per-process bucket feeds.

``options`` parses a watch's query string (``?key=&since=&include=``), ``consumer``
holds ``WatchConsumer``: the handshake, the feed, replay, heartbeats, the bounded
outbox and the closes. A dialect subclasses it and says which bucket a socket
watches and how a change is rendered (``buckets.kv.consumers``,
``buckets.configs.consumers``); this package imports no dialect.
"""
