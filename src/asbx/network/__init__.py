"""Egress for `network: {allow: [...]}` sandboxes: the allowlist, the proxy, its lifecycle."""
