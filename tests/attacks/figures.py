"""The before/after table of docs/SECURITY_AND_RELIABILITY.md from two ``ATTACK_REPORT`` files.

    python tests/attacks/figures.py \
        docs/figures/attacks-before.jsonl docs/figures/attacks-after.jsonl
"""

from __future__ import annotations

import json
import sys


def _load(path: str) -> dict[str, dict]:
    with open(path) as fh:
        return {row["attack"]: row for row in map(json.loads, fh)}


def _cell(row: dict | None) -> list[str]:
    if row is None:
        return ["-"] * 5
    return [f"{row['rss_growth_mb']:+.1f} MiB", f"{row['fd_growth']:+d}",
            f"{row['scrape_success'] * 100:.0f}% (lockout {row['longest_lockout_s']:.1f} s)",
            f"{row['offer_p50_ms']:.1f} / {row['offer_p99_ms']:.1f} ms",
            "-" if row.get("endpoint_peak_rss_mb") is None
            else f"{row['endpoint_peak_rss_mb']:.0f} MiB, {row['endpoint_peak_fds']} fds"]


def main() -> None:
    before, after = _load(sys.argv[1]), _load(sys.argv[2])
    print("| attack | | worker memory | worker fds | scrapes served | offer -> answer p50 / p99 "
          "| endpoint process peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in after:
        for label, row in (("before", before.get(name)), ("after", after[name])):
            print("| " + " | ".join([name if label == "before" else "", label, *_cell(row)]) + " |")


if __name__ == "__main__":
    main()
