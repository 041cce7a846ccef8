"""The admin dashboard: server-rendered pages over the storage core and the services."""
