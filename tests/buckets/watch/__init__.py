"""Tests of buckets/watch: the watch protocol the dialects share."""
