"""The secrets dialect (/api/v1/secrets): values sealed per environment, every operation audited.

``inputs`` parses requests, ``services`` holds the dialect's rules over the core's
``SYS_secrets_<env>`` buckets (``versions``: kept versions and rollback), ``views`` and
``urls`` the HTTP front door, ``exceptions`` its errors.
"""
