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


def test_generate_writes_only_into_a_checkout_it_is_given(tmp_path, capsys) -> None:
    """`make generate` passes the checkout; the installed package never guesses it."""
    from livekit_agents_exporter.generate import main

    assert main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no README.md with the metric table markers" in err, err
    assert list(tmp_path.iterdir()) == []
