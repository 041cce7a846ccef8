"""Access: API keys and principals, permissions, WebSocket tickets and the audit log (models stay in the kvsite app)."""
