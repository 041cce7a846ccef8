"""Tests of buckets/core: the storage core."""
