"""The config documents dialect (/api/v1/config): JSON documents per environment, with revisions.

``services`` holds the rules (merge patch, rollback) over the core's ``SYS_config_<env>``
buckets, ``views`` and ``urls`` the HTTP front door, ``consumers`` the document watch.
"""
