"""kvsite: a self-hosted key-value, config and secrets service."""

__version__ = "0.1.0"
