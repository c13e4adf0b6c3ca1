"""The Alertmanager example: valid for amtool, routes every alert of the pack by severity,
and inhibits warnings under a page of the same concern, in a real Alertmanager."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import ALERTS_DIR

from binaries import require_binary
from livekit_agents_exporter.prometheus_runner import Alertmanager
from livekit_agents_exporter.rules import load_config, render_rules
from livekit_agents_exporter.rules.alertmanager import NOWHERE, PAGER, TICKET, alertmanager_config
from livekit_agents_exporter.rules.render import ALERTMANAGER_FILE

EXAMPLE = ALERTS_DIR / ALERTMANAGER_FILE
RECEIVER = {"critical": PAGER, "warning": TICKET, "info": NOWHERE}


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary("amtool", "prometheus-alertmanager")


def _amtool(amtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _pack_alerts() -> list[dict[str, Any]]:
    return [r for g in render_rules(load_config())["groups"] for r in g["rules"] if "alert" in r]


def test_example_passes_amtool_check_config(amtool: str) -> None:
    result = _amtool(amtool, "check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_every_alert_of_the_pack_reaches_the_receiver_of_its_severity(amtool: str) -> None:
    for alert in _pack_alerts():
        labels = {"alertname": alert["alert"], **alert["labels"], "cluster": "eu",
                  "namespace": "voice", "agent_name": "support"}
        result = _amtool(amtool, "config", "routes", "test", f"--config.file={EXAMPLE}",
                         *(f"{k}={v}" for k, v in labels.items()))
        assert result.returncode == 0, result.stdout + result.stderr
        receiver = result.stdout.strip().splitlines()[-1]
        assert receiver == RECEIVER[alert["labels"]["severity"]], (alert["alert"], receiver)


def test_alerts_outside_the_pack_are_left_to_the_rest_of_the_config(amtool: str) -> None:
    result = _amtool(amtool, "config", "routes", "test", f"--config.file={EXAMPLE}",
                     "alertname=KubePodCrashLooping", "severity=critical")
    assert result.stdout.strip().splitlines()[-1] == NOWHERE, result.stdout


def test_routing_tree_groups_per_agent(amtool: str) -> None:
    result = _amtool(amtool, "config", "routes", "show", f"--config.file={EXAMPLE}")
    assert result.returncode == 0, result.stderr
    route = yaml.safe_load(EXAMPLE.read_text())["route"]["routes"][0]
    assert route["group_by"] == ["alertname", "cluster", "namespace", "agent_name"]


def _post(url: str, body: Any) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=10) as response:
        return json.loads(response.read())


def test_a_page_inhibits_the_warnings_of_its_concern_for_the_same_agent(tmp_path: Path) -> None:
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    by_name = {a["alert"]: a for a in _pack_alerts()}

    def alert(name: str, agent: str = "support") -> dict[str, Any]:
        labels = {"alertname": name, **by_name[name]["labels"], "cluster": "eu",
                  "namespace": "voice", "agent_name": agent}
        now = datetime.now(timezone.utc)
        return {"labels": labels, "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=10)).isoformat()}

    posted = [alert("LiveKitAgentsNoCapacity"), alert("LiveKitAgentsCapacityLow"),
              alert("LiveKitAgentsCapacityExhaustionPredicted"),
              alert("LiveKitAgentsJobRejectionsHigh"),
              alert("LiveKitAgentsAssignmentTimeouts"),  # concern jobs: not silenced
              alert("LiveKitAgentsCapacityLow", agent="sales")]  # another agent
    inhibited = {("LiveKitAgentsCapacityLow", "support"),
                 ("LiveKitAgentsCapacityExhaustionPredicted", "support"),
                 ("LiveKitAgentsJobRejectionsHigh", "support")}
    config = alertmanager_config(load_config(), pager_url="http://127.0.0.1:9/pager",
                                 ticket_url="http://127.0.0.1:9/ticket")
    with Alertmanager(binary=binary, workdir=tmp_path, config=config) as am:
        _post(f"{am.url}/api/v2/alerts", posted)
        deadline = time.monotonic() + 30
        while True:
            seen = {(a["labels"]["alertname"], a["labels"]["agent_name"]):
                    bool(a["status"]["inhibitedBy"]) for a in _alerts(am.url)}
            done = len(seen) == len(posted) and {k for k, v in seen.items() if v} == inhibited
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert {k for k, v in seen.items() if v} == inhibited, seen
    assert len(seen) == len(posted), seen
