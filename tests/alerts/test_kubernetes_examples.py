"""The shipped PodMonitor and ServiceMonitor give the labels the pack's default selector
matches: their scrape configuration as prometheus-operator generates it, in a real
Prometheus, scraping a real instrumented worker, with the shipped rules loaded.

And the documented failure is caught: a PodMonitor without ``jobLabel`` gives
``job="<namespace>/<name>"``, the default selector matches nothing, and
``LiveKitAgentsSelectorMatchesNothing`` fires.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import ROOT
from operator_scrape import (
    endpoint_discovery_labels,
    pod_discovery_labels,
    pod_monitor_scrape_config,
    service_monitor_scrape_config,
)

from binaries import require_binary
from livekit_agents_exporter.prometheus_runner import Prometheus
from livekit_agents_exporter.rules import load_config, render_text
from livekit_agents_exporter.rules import recording as rec
from worker_harness import eventually, run_worker, sim  # noqa: F401 - sim is a fixture

EXAMPLES = ROOT / "examples" / "kubernetes"
NAMESPACE, POD = "voice", "livekit-agents-7c9d5b6f4-x2k8q"
AGENT = "support"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _manifests(name: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text())}


def _pod_labels() -> dict[str, str]:
    """The labels the example monitors select the worker pods by."""
    return dict(_manifests("podmonitor.yaml")["PodMonitor"]["spec"]["selector"]["matchLabels"])


def _write_sd(path: Path, address: str, labels: dict[str, str]) -> str:
    path.write_text(json.dumps([{"targets": [address], "labels": labels}]))
    return str(path)


def _scrape_configs(workdir: Path, address: str, *, job_label: bool = True
                    ) -> list[dict[str, Any]]:
    pod_monitor = _manifests("podmonitor.yaml")["PodMonitor"]
    if not job_label:
        pod_monitor = {**pod_monitor, "spec": {k: v for k, v in pod_monitor["spec"].items()
                                               if k != "jobLabel"}}
    port = pod_monitor["spec"]["podMetricsEndpoints"][0]["port"]
    pod_sd = _write_sd(workdir / "pods.json", address,
                       pod_discovery_labels(address, NAMESPACE, POD, _pod_labels(), port))
    configs = [pod_monitor_scrape_config(pod_monitor, NAMESPACE, pod_sd)]
    if job_label:
        service_docs = _manifests("servicemonitor.yaml")
        service, monitor = service_docs["Service"], service_docs["ServiceMonitor"]
        endpoints_sd = _write_sd(workdir / "endpoints.json", address, endpoint_discovery_labels(
            address, NAMESPACE, POD, _pod_labels(), service["metadata"]["name"],
            service["metadata"]["labels"], service["spec"]["ports"][0]["name"]))
        configs.append(service_monitor_scrape_config(monitor, NAMESPACE, endpoints_sd))
    return configs


async def _prometheus(workdir: Path, scrape_configs: list[dict[str, Any]]) -> Prometheus:
    rules = workdir / "rules.yaml"
    # the shipped defaults, for: shortened so SelectorMatchesNothing fires within seconds
    rules.write_text(render_text(load_config().scaled(0.005)))
    prom = Prometheus([], [rules], binary=require_binary("prometheus", "prometheus"),
                      workdir=workdir, scrape_configs=scrape_configs)
    await asyncio.to_thread(prom.start)
    return prom


async def _query(prom: Prometheus, promql: str) -> list[dict[str, Any]]:
    return await asyncio.to_thread(prom.query, promql)


async def test_shipped_monitors_give_the_labels_the_default_selector_matches(
        sim, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    async with run_worker(sim, agent_name=AGENT) as worker:
        address = worker.exporter.url.split("/")[2]
        prom = await _prometheus(tmp_path, _scrape_configs(tmp_path, address))
        try:
            selector = load_config().selector
            up = f"up{{{selector}}}"

            async def both_scraped() -> bool:
                return len(await _query(prom, f"{up} == 1")) == 2

            await eventually(both_scraped, timeout=30, what="both monitors scraping the worker")
            for series in await _query(prom, up):
                labels = series["metric"]
                assert (labels["namespace"], labels["pod"], labels["instance"]) == \
                    (NAMESPACE, POD, address), labels

            async def rules_see_one_worker() -> list[dict[str, Any]]:
                return await _query(prom, f'{rec.WORKERS}{{agent_name="{AGENT}"}}')

            result = await eventually(rules_see_one_worker, timeout=30,
                                      what="the recording rules seeing the worker")
            # read by a PodMonitor and a ServiceMonitor, it is still one worker, in its namespace
            assert [(r["metric"].get("namespace"), float(r["value"][1])) for r in result] == \
                [(NAMESPACE, 1.0)], result
            # the blindness warnings may fire while the worker is still starting (their for:
            # is scaled down to seconds here); once both monitors scrape it they must clear
            blind = ('ALERTS{alertname=~"LiveKitAgents(SelectorMatchesNothing'
                     '|ExporterMetricsMissing)"}')

            async def blindness_cleared() -> bool:
                return await _query(prom, blind) == []

            await eventually(blindness_cleared, timeout=60, what="the blindness warnings to clear")
        finally:
            await asyncio.to_thread(prom.stop)


async def test_podmonitor_without_joblabel_is_reported_as_a_blind_pack(
        sim, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    async with run_worker(sim, agent_name=AGENT) as worker:
        address = worker.exporter.url.split("/")[2]
        prom = await _prometheus(tmp_path, _scrape_configs(tmp_path, address, job_label=False))
        try:
            async def scraped() -> list[dict[str, Any]]:
                return await _query(prom, "up == 1")

            result = await eventually(scraped, timeout=30, what="the worker being scraped")
            assert result[0]["metric"]["job"] == f"{NAMESPACE}/livekit-agents", result

            async def blind() -> list[dict[str, Any]]:
                return await _query(prom, 'ALERTS{alertname="LiveKitAgentsSelectorMatchesNothing",'
                                          ' alertstate="firing"}')

            await eventually(blind, timeout=30, what="LiveKitAgentsSelectorMatchesNothing")
            assert await _query(prom, rec.WORKERS) == []
        finally:
            await asyncio.to_thread(prom.stop)
