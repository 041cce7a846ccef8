"""The storage core's Prometheus metrics (``/metrics`` serves them with the HTTP ones)."""

from prometheus_client import Counter

WRITES = Counter("kvsite_kv_writes_total", "Committed KV writes", ["operation"])
CAS_CONFLICTS = Counter("kvsite_kv_cas_conflicts_total", "Writes refused by If-Match / If-None-Match (412)")
SWEEPS = Counter("kvsite_sweeper_runs_total", "kv_sweep passes")
SWEPT_ENTRIES = Counter("kvsite_sweeper_entries_removed_total", "Expired entries removed by kv_sweep")
