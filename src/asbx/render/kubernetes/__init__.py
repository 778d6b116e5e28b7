"""Render a project as Kubernetes manifests for kubernetes-sigs/agent-sandbox (pure, offline)."""
