"""Tests of kvsite/dashboard: the staff pages, one module per page, and the browser tests."""
