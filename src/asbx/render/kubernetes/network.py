"""Network policies: deny -> no traffic, open -> no policy, allowlist -> only its egress proxy."""

from __future__ import annotations

import json

from asbx.render.kubernetes import names
from asbx.render.kubernetes.model import PROXY_PORT, Manifest, RenderOptions
from asbx.spec.model import SandboxSpec

PROXY_ROLE = "egress-proxy"
NO_PROXY = "localhost,127.0.0.1,::1"
# Cluster DNS, so the sandbox can resolve its proxy's Service name (and nothing else).
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def _meta(name: str, options: RenderOptions, labels: dict[str, str]) -> dict[str, object]:
    return names.metadata(name, options.namespace, labels)


def proxy_name(options: RenderOptions, sandbox: str) -> str:
    return names.object_name(options.project, sandbox, "egress")


def proxy_env(options: RenderOptions, sandbox: str) -> dict[str, str]:
    """What points the sandbox's HTTP clients at its proxy (both spellings, as locally)."""
    url = f"http://{proxy_name(options, sandbox)}:{PROXY_PORT}"
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
            "NO_PROXY": NO_PROXY, "no_proxy": NO_PROXY}


def sandbox_policy(options: RenderOptions, sandbox: str, box: SandboxSpec) -> Manifest | None:
    """The NetworkPolicy of one sandbox's pod, or None for `open`."""
    mode = box.network.mode
    if mode == "open":
        return None
    pod = names.selector(options.project, "sandbox", sandbox)
    spec: dict[str, object] = {"podSelector": {"matchLabels": pod},
                               "policyTypes": ["Ingress", "Egress"], "ingress": []}
    if mode == "deny":
        spec["egress"] = []
    else:
        proxy = names.selector(options.project, PROXY_ROLE, sandbox)
        spec["egress"] = [
            {"to": [{"podSelector": {"matchLabels": proxy}}],
             "ports": [{"protocol": "TCP", "port": PROXY_PORT}]},
            {"to": [DNS_PEER], "ports": DNS_PORTS},
        ]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(names.object_name(options.project, sandbox, mode),
                              options, names.labels(options.project, "network", sandbox)),
            "spec": spec}


def proxy_objects(options: RenderOptions, sandbox: str, box: SandboxSpec) -> list[Manifest]:
    """An allowlist sandbox's proxy: ConfigMap, Deployment, Service, NetworkPolicy."""
    name = proxy_name(options, sandbox)
    labels = names.labels(options.project, PROXY_ROLE, sandbox)
    pods = names.selector(options.project, PROXY_ROLE, sandbox)
    policy = json.dumps({"allow": list(box.network.allow)}, indent=2) + "\n"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, options, labels),
              "data": {"policy.json": policy}}
    container = {
        "name": "proxy", "image": _proxy_image(options),
        "command": ["python", "-m", "asbx.network.proxy",
                    "--listen", f"0.0.0.0:{PROXY_PORT}",
                    "--policy-file", "/etc/asbx-proxy/policy.json"],
        "ports": [{"name": "proxy", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "policy", "mountPath": "/etc/asbx-proxy", "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "runAsUser": 65534, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, options, labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": pods},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"automountServiceAccountToken": False,
                                       "containers": [container],
                                       "volumes": [{"name": "policy",
                                                    "configMap": {"name": name}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, options, labels),
               "spec": {"selector": pods, "ports": [{"name": "proxy", "port": PROXY_PORT,
                                                     "targetPort": PROXY_PORT,
                                                     "protocol": "TCP"}]}}
    ingress_from = names.selector(options.project, "sandbox", sandbox)
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": _meta(name, options, labels),
              "spec": {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": ingress_from}}],
                                    "ports": [{"protocol": "TCP", "port": PROXY_PORT}]}]}}
    return [config, deployment, service, netpol]


def _proxy_image(options: RenderOptions) -> str:
    if options.proxy_image:
        return options.proxy_image
    from asbx import __version__

    base = options.registry.rstrip("/") if options.registry else "localhost"
    return f"{base}/asbx/egress-proxy:{__version__}"
