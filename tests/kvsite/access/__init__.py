"""Tests of kvsite/access: API keys, principals, permissions, tickets, audit."""
