"""What a user can change in the rendered dashboard (no grafana-foundation-sdk import)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_UID = "livekit-agents-saturation"
DEFAULT_TITLE = "LiveKit Agents / Worker saturation"
# agents.target_load of the LiveKit server (its default)
DEFAULT_TARGET_LOAD = 0.7
# Where the committed copy lives, relative to the repository root.
COMMITTED_PATH = "grafana/livekit-agents-saturation.json"

_UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


@dataclass(frozen=True)
class DashboardOptions:
    """Options of ``livekit-agents-exporter dashboard``; defaults give the committed JSON."""

    title: str = DEFAULT_TITLE
    uid: str = DEFAULT_UID
    datasource: str | None = None  # default value of the datasource variable
    selector: tuple[str, ...] = field(default=())  # extra label matchers on every series
    target_load: float = DEFAULT_TARGET_LOAD

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("the title must not be empty")
        if not _UID.match(self.uid):
            raise ValueError(f"uid {self.uid!r}: 1 to 40 letters, digits, '-' or '_'")
        if not 0 < self.target_load <= 1:
            raise ValueError(f"target load {self.target_load!r} must be in (0, 1]")
        if self.datasource is not None and not self.datasource.strip():
            raise ValueError("the datasource must not be empty")
