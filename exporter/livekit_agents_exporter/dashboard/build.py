"""Assembles the dashboard from the rows and renders the JSON ready to import."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dash_m

from .options import DashboardOptions
from .panels import row
from .rows import ROWS
from .variables import all_variables

TAGS = ["livekit", "livekit-agents", "saturation", "livekit-agents-exporter"]
REFRESH = "30s"
TIME_FROM = "now-3h"


def build_dashboard(options: DashboardOptions | None = None) -> dash_m.Dashboard:
    options = options or DashboardOptions()
    sel = options.selection()
    builder = (
        dash_b.Dashboard(options.dashboard_title).uid(options.dashboard_uid).tags(TAGS)
        .description("Saturation of LiveKit Agents workers: can the fleet take the next call, "
                     "how close it is to full, which workers are saturated, whether jobs are "
                     "refused or lost, and since when. Metrics from livekit-agents-exporter.")
        .readonly().refresh(REFRESH).time(TIME_FROM, "now").timezone("browser")
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .timepicker(dash_b.TimePicker().refresh_intervals(
            ["10s", "30s", "1m", "5m", "15m", "30m", "1h"]))
        .variables(all_variables(sel, options.datasource, options.server_target_load))
    )
    for make_row in ROWS:
        content = make_row(sel)
        builder = builder.with_row(row(content.title))
        for panel in content.panels:
            builder = builder.with_panel(panel)
    dashboard = builder.build()
    register_default_plugins()  # the panel plugins' defaults, used below
    for number, built in enumerate(dashboard.panels or [], start=1):
        built.id_val = number
        if isinstance(built, dash_m.Panel):
            _default_custom_field_config(built)
    return dashboard


def _default_custom_field_config(panel: dash_m.Panel) -> None:
    """Give the panel the plugin's default custom field config, as the SDK's decoder does,
    so that the JSON decodes into the SDK's model and encodes back unchanged."""
    config = cogruntime.panelcfg_config(panel.type_val)
    defaults = panel.field_config.defaults if panel.field_config else None
    if config is None or config.field_config_from_json_hook is None or defaults is None:
        return
    if defaults.custom is None:
        defaults.custom = config.field_config_from_json_hook({})


def to_dict(dashboard: dash_m.Dashboard) -> dict[str, Any]:
    """The plain JSON document (what Grafana imports)."""
    document: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return document


def render_json(options: DashboardOptions | None = None) -> str:
    """The dashboard as the JSON text committed and written by the CLI."""
    return json.dumps(build_dashboard(options), cls=JSONEncoder, indent=2,
                      ensure_ascii=False) + "\n"
