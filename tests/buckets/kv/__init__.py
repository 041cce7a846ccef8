"""Tests of buckets/kv: the bucket & key dialect."""
