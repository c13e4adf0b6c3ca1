"""The scrape configuration prometheus-operator generates for a PodMonitor or a
ServiceMonitor, for the fields the examples use, and the discovery labels Kubernetes
gives a pod of the worker Deployment.

Followed from prometheus-operator's ``pkg/prometheus/promcfg.go``
(``generatePodMonitorConfig``, ``generateServiceMonitorConfig``): selector labels become
``keep`` rules on ``__meta_kubernetes_*_label_<name>`` and ``..._labelpresent_<name>``, the
port name a ``keep`` rule, then ``namespace``/``container``/``pod`` (and ``service``), then
``job`` = ``<namespace>/<name>`` (PodMonitor) or the Service's name (ServiceMonitor),
overridden by the ``jobLabel`` label's value when it has one, then ``endpoint`` = the port
name. Kubernetes service discovery is replaced by a file with the same ``__meta_*``
labels, so a real Prometheus applies the real relabelling without a cluster.
"""

from __future__ import annotations

import re
from typing import Any


def sanitize(name: str) -> str:
    """The operator's sanitizeLabelName: every invalid character becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _keep_selector(kind: str, match_labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"action": "keep",
             "source_labels": [f"__meta_kubernetes_{kind}_label_{sanitize(k)}",
                               f"__meta_kubernetes_{kind}_labelpresent_{sanitize(k)}"],
             "regex": f"({re.escape(v)});true"} for k, v in sorted(match_labels.items())]


def pod_monitor_scrape_config(manifest: dict[str, Any], namespace: str,
                              sd_file: str) -> dict[str, Any]:
    meta, spec = manifest["metadata"], manifest["spec"]
    endpoint = spec["podMetricsEndpoints"][0]
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
        *_keep_selector("pod", spec["selector"]["matchLabels"]),
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
         "regex": endpoint["port"]},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"],
         "regex": "(Failed|Succeeded)"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"target_label": "job", "replacement": f"{namespace}/{meta['name']}"},
    ]
    if spec.get("jobLabel"):
        source = f"__meta_kubernetes_pod_label_{sanitize(spec['jobLabel'])}"
        relabel.append({"source_labels": [source],
                        "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    return {"job_name": f"podMonitor/{namespace}/{meta['name']}/0",
            "metrics_path": endpoint.get("path", "/metrics"),
            "file_sd_configs": [{"files": [sd_file]}], "relabel_configs": relabel}


def service_monitor_scrape_config(manifest: dict[str, Any], namespace: str,
                                  sd_file: str) -> dict[str, Any]:
    meta, spec = manifest["metadata"], manifest["spec"]
    endpoint = spec["endpoints"][0]
    target = ["__meta_kubernetes_endpoint_address_target_kind",
              "__meta_kubernetes_endpoint_address_target_name"]
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
        *_keep_selector("service", spec["selector"]["matchLabels"]),
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"],
         "regex": endpoint["port"]},
        {"source_labels": target, "separator": ";", "regex": "Node;(.*)",
         "replacement": "${1}", "target_label": "node"},
        {"source_labels": target, "separator": ";", "regex": "Pod;(.*)",
         "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"],
         "regex": "(Failed|Succeeded)"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
         "replacement": "${1}"},
    ]
    if spec.get("jobLabel"):
        source = f"__meta_kubernetes_service_label_{sanitize(spec['jobLabel'])}"
        relabel.append({"source_labels": [source],
                        "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    return {"job_name": f"serviceMonitor/{namespace}/{meta['name']}/0",
            "metrics_path": endpoint.get("path", "/metrics"),
            "file_sd_configs": [{"files": [sd_file]}], "relabel_configs": relabel}


def pod_discovery_labels(address: str, namespace: str, pod: str,
                         pod_labels: dict[str, str], port_name: str) -> dict[str, str]:
    """What Kubernetes pod discovery (role pod) attaches to the pod's named port."""
    labels = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod,
              "__meta_kubernetes_pod_container_name": "agent",
              "__meta_kubernetes_pod_container_port_name": port_name,
              "__meta_kubernetes_pod_phase": "Running", "__meta_kubernetes_pod_ready": "true",
              "__meta_kubernetes_pod_ip": address.rsplit(":", 1)[0]}
    for k, v in pod_labels.items():
        labels[f"__meta_kubernetes_pod_label_{sanitize(k)}"] = v
        labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(k)}"] = "true"
    return labels


def endpoint_discovery_labels(address: str, namespace: str, pod: str,
                              pod_labels: dict[str, str], service: str,
                              service_labels: dict[str, str], port_name: str) -> dict[str, str]:
    """What Kubernetes endpoints discovery (role endpoints) attaches to one endpoint."""
    labels = pod_discovery_labels(address, namespace, pod, pod_labels, port_name)
    del labels["__meta_kubernetes_pod_container_port_name"]
    labels.update({"__meta_kubernetes_service_name": service,
                   "__meta_kubernetes_endpoint_port_name": port_name,
                   "__meta_kubernetes_endpoint_ready": "true",
                   "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                   "__meta_kubernetes_endpoint_address_target_name": pod})
    for k, v in service_labels.items():
        labels[f"__meta_kubernetes_service_label_{sanitize(k)}"] = v
        labels[f"__meta_kubernetes_service_labelpresent_{sanitize(k)}"] = "true"
    return labels
