"""What a worker loads: ``import`` and ``instrument()`` import nothing they do not need.

Each case runs a fresh interpreter. livekit-agents itself imports ``ssl`` (aiohttp) and,
through PyJWT's ``cryptography``, ``bcrypt`` when it is installed, so a worker's
``sys.modules`` holds them whatever the exporter does; what is checked is the import
statements the exporter's own modules execute (``builtins.__import__`` is watched), plus
``sys.modules`` where no SDK is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# never imported by a worker without a web config (ssl/_ssl: TLS; yaml: the config reader;
# bcrypt: basic auth, checked in the endpoint process only; aiohttp: the endpoint's server)
NOT_WITHOUT_WEB_CONFIG = ("yaml", "ssl", "_ssl", "bcrypt", "aiohttp")
# the tooling: never imported by a worker
TOOLING = ("rules", "dashboard", "simulator", "demo", "commands", "cli", "prometheus_runner",
           "server_log", "generate", "synthetic")

SPY = r'''
import builtins, importlib.util, json, sys
PKG = "livekit_agents_exporter"
seen = set()
_real = builtins.__import__

def _spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if importer == PKG or importer.startswith(PKG + "."):
        package = (globals or {}).get("__package__") or importer
        target = importlib.util.resolve_name("." * level + name, package) if level else name
        seen.add(target)
        seen.update(f"{target}.{item}" for item in (fromlist or ()) if item != "*")
    return _real(name, globals, locals, fromlist, level)

builtins.__import__ = _spy

def report(**extra):
    mods = sorted(m for m in sys.modules if m == PKG or m.startswith(PKG + "."))
    print(json.dumps({"imported_by_exporter": sorted(seen), "sys_modules": sorted(sys.modules),
                      "exporter_modules": mods, **extra}))
'''

WORKER = SPY + r'''
from livekit.agents import WorkerOptions
from livekit.agents import worker as sdk_worker

async def entrypoint(ctx):
    pass

AgentServer = getattr(sdk_worker, "AgentServer", None)
target = AgentServer() if AgentServer is not None else WorkerOptions(entrypoint_fnc=entrypoint)
web_config = sys.argv[1] if len(sys.argv) > 1 else None
from livekit_agents_exporter import instrument
exporter = instrument(target, host="127.0.0.1", port=0, web_config=web_config)
url = exporter.url
exporter.close()
report(url=url, target=type(target).__name__)
'''


def _run(python: str, code: str, *args: str, path: str = "") -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT / "exporter"), path) if p))
    for name in ("LIVEKIT_AGENTS_EXPORTER_PORT", "LIVEKIT_AGENTS_EXPORTER_HOST"):
        env.pop(name, None)
    done = subprocess.run([python, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _top(names: object) -> set[str]:
    assert isinstance(names, list)
    return {str(n).split(".")[0] for n in names}


def _tooling(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules
            if str(m).split(".")[1:2] and str(m).split(".")[1] in TOOLING]


@pytest.mark.sdk_independent
def test_import_loads_only_the_package_itself() -> None:
    result = _run(sys.executable, SPY + "import livekit_agents_exporter\nreport()")
    assert result["exporter_modules"] == ["livekit_agents_exporter"], result["exporter_modules"]
    modules = result["sys_modules"]
    assert isinstance(modules, list)
    loaded = [m for m in NOT_WITHOUT_WEB_CONFIG if m in modules]
    assert loaded == [], f"import livekit_agents_exporter loaded {loaded}"


def test_instrument_without_web_config_imports_no_yaml_ssl_bcrypt_or_tooling() -> None:
    result = _run(sys.executable, WORKER)
    assert str(result["url"]).startswith("http://127.0.0.1:"), result["url"]
    imported = sorted(_top(result["imported_by_exporter"]) & set(NOT_WITHOUT_WEB_CONFIG))
    assert imported == [], f"instrument({result['target']}) imported {imported}"
    modules = result["sys_modules"]
    assert isinstance(modules, list) and "yaml" not in modules, "yaml is loaded in the worker"
    tooling = _tooling(result["exporter_modules"])
    assert tooling == [], f"instrument() loaded tooling modules {tooling}"


def test_a_tls_and_basic_auth_web_config_loads_ssl_and_yaml_not_bcrypt(tmp_path: Path) -> None:
    """The worker reads the file (yaml) and builds the TLS context (ssl); bcrypt checks run
    in the endpoint process only, so the worker only checks that bcrypt is installed."""
    pytest.importorskip("cryptography")  # the test PKI (the test extra)
    web = tmp_path / "web.yml"
    make_pki = (f"from pki import Pki\nfrom security_support import bcrypt_hash\n"
                f"p = Pki(__import__('pathlib').Path({str(tmp_path)!r}))\n"
                f"open({str(web)!r}, 'w').write('tls_server_config:\\n'\n"
                f"  f'  cert_file: {{p.server.cert}}\\n  key_file: {{p.server.key}}\\n'\n"
                f"  'basic_auth_users:\\n  prometheus: ' + bcrypt_hash('pw') + '\\n')\n")
    done = subprocess.run([sys.executable, "-c", make_pki], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "security")),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = _run(sys.executable, WORKER, str(web))
    assert str(result["url"]).startswith("https://127.0.0.1:"), result["url"]
    imported = _top(result["imported_by_exporter"])
    assert {"ssl", "yaml"} <= imported, f"imported by the exporter: {sorted(imported)}"
    assert "bcrypt" not in imported, "the worker imported bcrypt: its checks belong to the endpoint"
    assert _tooling(result["exporter_modules"]) == []
