"""The bucket & key dialect (/api/v1/kv/buckets): Ironflow's key-value API over the core's user buckets.

``inputs`` parses requests, ``services`` holds the dialect's rules (public bucket names,
permissions on them, audited bucket changes), ``outputs`` the response bodies, ``views``
and ``urls`` the HTTP front door, ``consumers`` the bucket watch.
"""
