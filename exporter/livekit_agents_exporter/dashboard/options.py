"""What a user can change in the rendered dashboard (no grafana-foundation-sdk import).

The dashboard reads the mixin's configuration, the same object and file as the alert
pack (``rules.config``): selector, aggregation and worker labels, the server's
target load, the dashboard's uid and title. Keyword arguments override single values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..prometheus_syntax import parse_matchers
from ..rules.config import RulesConfig, load_config
from .queries import Selector

# Where the committed copy lives, relative to the repository root.
COMMITTED_PATH = "grafana/livekit-agents-saturation.json"

_UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


def _default_mixin() -> RulesConfig:
    return load_config()


_DEFAULTS = _default_mixin()
DEFAULT_UID = _DEFAULTS.dashboard_uid
DEFAULT_TITLE = _DEFAULTS.dashboard_title
DEFAULT_TARGET_LOAD = _DEFAULTS.server_target_load


@dataclass(frozen=True)
class DashboardOptions:
    """Options of ``livekit-agents-exporter dashboard``; defaults give the committed JSON.

    ``mixin`` is the configuration shared with the alert pack; ``title``, ``uid``,
    ``selector`` (label matchers, replacing the mixin's selector) and ``target_load``
    override its values when given.
    """

    mixin: RulesConfig = field(default_factory=_default_mixin)
    datasource: str | None = None  # default value of the datasource variable
    title: str | None = None
    uid: str | None = None
    selector: tuple[str, ...] | None = None
    target_load: float | None = None

    def __post_init__(self) -> None:
        if not self.dashboard_title.strip():
            raise ValueError("the title must not be empty")
        if not _UID.match(self.dashboard_uid):
            raise ValueError(f"uid {self.dashboard_uid!r}: 1 to 40 letters, digits, '-' or '_'")
        if not 0 < self.server_target_load <= 1:
            raise ValueError(f"target load {self.server_target_load!r} must be in (0, 1]")
        if self.datasource is not None and not self.datasource.strip():
            raise ValueError("the datasource must not be empty")

    @property
    def dashboard_title(self) -> str:
        return self.mixin.dashboard_title if self.title is None else self.title

    @property
    def dashboard_uid(self) -> str:
        return self.mixin.dashboard_uid if self.uid is None else self.uid

    @property
    def server_target_load(self) -> float:
        return self.mixin.server_target_load if self.target_load is None else self.target_load

    def selection(self) -> Selector:
        """The selectors and groupings of every query."""
        extra = (parse_matchers(self.mixin.selector) if self.selector is None
                 else self.selector)
        return Selector(extra=extra,
                        server_log_extra=parse_matchers(self.mixin.server_log["selector"]),
                        aggregation_labels=self.mixin.aggregation_labels,
                        worker_labels=self.mixin.worker_labels)
