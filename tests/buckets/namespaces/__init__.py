"""Tests of buckets/namespaces: the KV Service namespaces dialect."""
