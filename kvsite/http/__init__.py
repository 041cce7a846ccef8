"""HTTP plumbing shared by every front door: the request body contract (more moves here with the layout work)."""
