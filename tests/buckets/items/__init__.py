"""Tests of buckets/items: the items dialect."""
