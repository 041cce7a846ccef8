"""The storage core: buckets, keys, revisions, conditions, limits, expiry, history, change events and their fan-out.

Every write of every dialect goes through here, and nothing here imports a dialect
(tests/test_layout.py). Models stay in buckets/models.py, under the buckets app.
"""
