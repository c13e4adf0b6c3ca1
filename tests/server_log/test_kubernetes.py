"""The Kubernetes example for the server log renders with kustomize and fits together: the
program in the ConfigMap is the shipped one, the PodMonitor selects the DaemonSet's pods and
port, and the job label it gives is the one the server-log rules select."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from binaries import require_binary
from livekit_agents_exporter.rules import load_config
from livekit_agents_exporter.server_log import PROGRAM_NAME, program_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "server-log"


def _render() -> dict[str, dict]:
    kubectl = require_binary("kubectl", "kubernetes-client")
    proc = subprocess.run([kubectl, "kustomize", str(EXAMPLE)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(proc.stdout) if doc}


def test_kustomize_renders_daemonset_configmap_and_podmonitor() -> None:
    docs = _render()
    assert set(docs) == {"DaemonSet", "ConfigMap", "PodMonitor"}, set(docs)
    config_map, daemonset, monitor = docs["ConfigMap"], docs["DaemonSet"], docs["PodMonitor"]
    assert config_map["data"][PROGRAM_NAME] == program_text()
    pod = daemonset["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    # kustomize rewrote the reference to the hashed ConfigMap name
    assert volumes["program"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert volumes["pod-logs"]["hostPath"]["path"] == "/var/log/pods"
    container = pod["spec"]["containers"][0]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["program"]["mountPath"] == "/etc/mtail" and mounts["pod-logs"]["readOnly"]
    script = container["args"][0]
    assert "livekit-agents-exporter server-log" in script and "--progs /etc/mtail" in script
    assert "--logs /dev/stdin" in script and "--emit_prog_label=false" in script
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"mtail-metrics": 3903}
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "mtail-metrics"
    job = labels[monitor["spec"]["jobLabel"]]
    assert load_config().server_log["selector"] == f'job="{job}"', job
    assert all(doc["metadata"]["namespace"] == "monitoring" for doc in docs.values())
