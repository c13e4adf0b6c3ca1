"""``sdk.py`` is the only module that reaches livekit-agents' private names.

Read statically: every private name the installed SDK defines (methods, attributes,
module-level names starting with one underscore) is collected from its sources, then
every module of the exporter package (the demo included) and the benchmark worker is
scanned for an access to one of them on anything but its own ``self``/``cls``:
``obj._name``, ``getattr(obj, "_name")`` (and ``setattr``/``hasattr``/``delattr``), or
``from livekit... import _name``. A release that moves a name then costs an edit in one
file, and this test keeps it that way.

Names are not types: a short private name the package defines for itself as well
(``_run``, ``_lock``, ...) is left out, unless ``sdk.py`` reaches it on an SDK object,
which makes it an SDK name wherever it appears.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCANNER = Path(__file__).with_name("sdk_seam_scan.py")


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    """The scan's findings, from a fresh interpreter (see ``sdk_seam_scan.py`` for why)."""
    done = subprocess.run([sys.executable, str(SCANNER)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_scan_finds_what_sdk_py_reaches(scan):
    """The scanner is not blind: sdk.py itself is full of hits (and exempt from the rule)."""
    hits = scan["door_hits"]
    for expected in ("self.worker._proc_pool", "self.worker._closed", "self.worker._draining"):
        assert any(h.endswith(expected) for h in hits), (expected, hits)


def test_no_module_but_sdk_py_reaches_a_private_sdk_name(scan):
    assert scan["sdk_names"] > 200, f"only {scan['sdk_names']} private SDK names found"
    assert scan["offenders"] == [], \
        "private livekit-agents names outside sdk.py:\n" + "\n".join(scan["offenders"])
