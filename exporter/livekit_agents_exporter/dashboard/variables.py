"""Template variables: datasource, the label filters, and the server's target load.

Names, labels, ``multi`` and ``allValue`` follow the dashboard-linter's template rules
(``datasource`` / "Data source"; ``job`` and ``instance`` multi-select with ``.+``).
``cluster``, ``namespace`` and ``agent_name`` use ``.*`` for "All" so that series
without the label (no cluster label; workers without an agent name, which the server
dispatches automatically) still match.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dash_m

from .panels import DATASOURCE
from .queries import FILTER_VARIABLES, Selector

_LABELS = {
    "cluster": ("Cluster", ".*",
                "Target label `cluster`, if your Prometheus sets one (All also matches none)."),
    "namespace": ("Namespace", ".*",
                  "Target label `namespace` (Kubernetes); All also matches none."),
    "job": ("Job", ".+", "Prometheus scrape job of the workers."),
    "agent_name": ("Agent name", ".*",
                   "agent_name the workers registered with; All also matches workers without "
                   "one (automatic dispatch)."),
    "instance": ("Instance", ".+", "Scrape target: one worker process."),
}


def datasource_variable(current: str | None) -> dash_b.DatasourceVariable:
    v = (dash_b.DatasourceVariable("datasource").label("Data source").type("prometheus")
         .description("Prometheus that scrapes the workers' exporters."))
    if current:
        v = v.current(dash_m.VariableOption(selected=True, text=current, value=current))
    return v


def label_variable(name: str, sel: Selector) -> dash_b.QueryVariable:
    label, all_value, description = _LABELS[name]
    query = f"label_values({sel.variable_source('worker_registered', name)}, {name})"
    return (dash_b.QueryVariable(name).label(label).description(description)
            .datasource(DATASOURCE).query(query)
            .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(all_value)
            .current(dash_m.VariableOption(selected=True, text=["All"], value=["$__all"])))


def target_load_variable(value: float) -> dash_b.TextBoxVariable:
    text = f"{value:g}"
    return (dash_b.TextBoxVariable("target_load").label("Server target_load")
            .description("agents.target_load of the LiveKit server (default 0.7). The server "
                         "exports no agent metrics, so set it here: it offers no job to a "
                         "worker whose reported load is at or above it.")
            .default_value(text)
            .current(dash_m.VariableOption(selected=True, text=text, value=text)))


def all_variables(sel: Selector, datasource: str | None,
                  target_load: float) -> list[cogbuilder.Builder[dash_m.VariableModel]]:
    return [datasource_variable(datasource),
            *(label_variable(name, sel) for name in FILTER_VARIABLES),
            target_load_variable(target_load)]
