"""Installed, not run from a checkout: the package finds nothing through the repository.

The package is copied into the site-packages of a fresh virtual environment, as a wheel
install lays it out (its dependencies come from the test's own environment through a
``.pth`` line), and run from an unrelated directory with no ``PYTHONPATH``: the endpoint
process starts and serves, and the worker adds no directory to its ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import json, urllib.request
from prometheus_client import CollectorRegistry, Counter
import livekit_agents_exporter
from livekit_agents_exporter import http_server

registry = CollectorRegistry()
Counter("installed_probe", "A series the endpoint must serve.", registry=registry).inc()
server = http_server.MetricsServer(registry, host="127.0.0.1", port=0)
server.start()
try:
    body = urllib.request.urlopen(server.url, timeout=10).read().decode()
finally:
    server.stop()
print(json.dumps({"file": livekit_agents_exporter.__file__,
                  "added": http_server._import_root_to_add(),
                  "served": "installed_probe_total 1.0" in body}))
'''


def test_an_installed_copy_serves_without_touching_pythonpath(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    shutil.copytree(ROOT / "exporter" / "livekit_agents_exporter",
                    site / "livekit_agents_exporter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "-c", CHILD], capture_output=True, text=True,
                          env=env, cwd=elsewhere, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(site.resolve()), result["file"]
    assert result["added"] is None, f"would put {result['added']} on the endpoint's PYTHONPATH"
    assert result["served"], "the endpoint process did not serve the installed copy's registry"
