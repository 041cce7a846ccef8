"""Tests of kvsite/http: the body contract, the JSON reader, errors, negotiation, logs, metrics, health."""
