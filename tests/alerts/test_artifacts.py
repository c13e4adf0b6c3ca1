"""The committed files under alerts/ are exactly what the generator writes."""

from __future__ import annotations

from alert_files import ALERTS_DIR

from livekit_agents_exporter.rules.render import artifacts


def test_committed_alert_files_match_the_generator() -> None:
    for name, text in artifacts().items():
        committed = (ALERTS_DIR / name).read_text()
        assert committed == text, (
            f"alerts/{name} drifted from the generator: run `make generate` and commit "
            "the result")
