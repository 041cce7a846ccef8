"""The items dialect (/kv/items): simple JSON state per account, stored in one bucket per account of the core.

``inputs`` parses requests, ``services`` holds the dialect's rules over the core, ``ratelimit``
its per-account token buckets, ``views`` and ``urls`` the HTTP front door.
"""
