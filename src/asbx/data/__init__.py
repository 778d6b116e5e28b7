"""The data path: workspaces, content-addressed snapshot archives and build-context digests."""
