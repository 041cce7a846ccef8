"""Secrets are stored through the KV core in SYS_secrets_ buckets (see the secrets issue)."""
