"""The KV Service namespaces dialect (/api/v1/kv/namespaces, /api/v1/kv/<id>/...): typed, versioned entries.

``inputs`` parses requests, ``services`` holds namespaces (naming, access, CRUD),
``entries`` the entries and the one compare-and-swap write loop, ``bulk`` and
``versions`` (versions, rotation, rollback) build on it, ``records`` is the stored
record format (sealed in secret namespaces), ``exceptions`` the dialect's errors,
``views`` and ``urls`` the HTTP front door.
"""
