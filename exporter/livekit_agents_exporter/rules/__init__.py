"""The alert pack: recording and alerting rules rendered from one configuration.

    from livekit_agents_exporter.rules import load_config, render_rules
    config = load_config("my-config.yaml", overrides={"selector": 'job="demo"'})
    rules = render_rules(config.scaled(0.1))   # every for: ten times shorter

Needs only pyyaml and the metric catalogue, never livekit-agents.
"""

from __future__ import annotations

from ..config_file import ConfigError
from ..prometheus_syntax import Duration
from .config import RulesConfig, example_config, load_config
from .render import render_prometheus_rule, render_rules, render_text, to_yaml, write_artifacts

__all__ = [
    "ConfigError",
    "Duration",
    "RulesConfig",
    "example_config",
    "load_config",
    "render_prometheus_rule",
    "render_rules",
    "render_text",
    "to_yaml",
    "write_artifacts",
]
