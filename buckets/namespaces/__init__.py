"""The KV Service namespaces dialect (/api/v1/kv/namespaces, /api/v1/kv/<id>/...): typed, versioned entries."""
