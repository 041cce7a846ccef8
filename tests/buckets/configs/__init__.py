"""Tests of buckets/configs: the config documents dialect."""
