"""The public Grafana dashboard-linter rule list, ported to Python, plus project rules.

The upstream linter (grafana/dashboard-linter, Go) runs 17 rules: template-datasource,
template-job, template-instance, template-label-promql, template-on-time-change-reload,
panel-datasource, panel-title-description, panel-units, panel-no-targets, target-logql,
target-logql-auto, target-promql, target-rate-interval, target-job, target-instance,
target-counter-agg and uneditable-dashboard. Each is a function below with the same
name and the same checks; where upstream limits a rule to a list of panel types, the
port checks every panel (a stricter superset). PromQL is parsed with ``promql-parser``
after the same variable expansion upstream does (``$__rate_interval`` and friends become
recognisable durations; variables inside quoted strings stay as they are).

Exclusions are read from ``grafana/.lint`` in upstream's format, so running the Go
linter on the committed JSON honours the same ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml

from livekit_agents_exporter import metrics as m

Dashboard = dict[str, Any]
Panel = dict[str, Any]

# Sample values for Grafana's global variables: durations that cannot appear by
# accident (promql-parser keeps milliseconds in 32 bits, so under 2**32 ms).
RATE_INTERVAL_SAMPLE = dt.timedelta(milliseconds=3141592)
RANGE_SAMPLE = dt.timedelta(milliseconds=2718281)
INTERVAL_SAMPLE = dt.timedelta(milliseconds=1414213)
GLOBALS = {
    "__rate_interval": "3141592ms",
    "__range": "2718281ms",
    "__interval": "1414213ms",
    "__interval_ms": "1414213",
    "__range_s": "2718",
    "__range_ms": "2718281",
}

# Upstream's list of valid units (Grafana's valueFormats categories).
VALID_UNITS = frozenset("""
none string short percent percentunit humidity dB hex0x hex sci locale pixel
accMS2 accFS2 accG degree radian grad arcmin arcsec areaM2 areaF2 areaMI2
flops mflops gflops tflops pflops eflops zflops yflops
ppm conppb conngm3 conngNm3 conμgm3 conμgNm3 conmgm3 conmgNm3 congm3 congNm3 conmgdL conmmolL
bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes decgbytes tbytes dectbytes
pbytes decpbytes
pps binBps Bps binbps bps KiBs Kibits KBs Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits
TiBs Tibits TBs Tbits PiBs Pibits PBs Pbits
dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeAsLocal
dateTimeAsLocalNoDateIfToday dateTimeAsSystem dateTimeFromNow
watt kwatt megwatt gwatt mwatt Wm2 voltamp kvoltamp voltampreact kvoltampreact watth watthperkg
kwatth kwattm amph kamph mamph joule ev amp kamp mamp volt kvolt mvolt dBm ohm kohm Mohm farad
µfarad nfarad pfarad ffarad henry mhenry µhenry lumens
flowgpm flowcms flowcfs flowcfm litreh flowlpm flowmlpm lux
forceNm forcekNm forceN forcekN Hs KHs MHs GHs THs PHs EHs massmg massg masslb masskg masst
lengthmm lengthin lengthft lengthm lengthkm lengthmi
pressurembar pressurebar pressurekbar pressurepa pressurehpa pressurekpa pressurehg pressurepsi
radbq radci radgy radrad radsv radmsv radusv radrem radexpckg radr radsvh radmsvh radusvh
rotrpm rothz rotrads rotdegs celsius fahrenheit kelvin
hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks
cps ops reqps rps wps iops cpm opm rpm wpm mps mpm
velocityms velocitykmh velocitymph velocityknot mlitre litre m3 Nm3 dm3 gallons
bool bool_yes_no bool_on_off
""".split())

LABEL_FUNCTIONS = ("label_names", "label_values", "metrics", "query_result")
RATE_FUNCTIONS = ("rate", "irate")
COUNTER_FUNCTIONS = ("rate", "irate", "increase")
FILTER_VARIABLES = ("cluster", "namespace", "job", "agent_name", "instance")
ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    panel: str = ""  # panel title, as upstream's exclusion entries match it
    target: int | None = None  # target index in the panel

    def __str__(self) -> str:
        where = f"panel {self.panel!r}" if self.panel else "dashboard"
        if self.target is not None:
            where += f" target {self.target}"
        return f"[{self.rule}] {where}: {self.message}"


# --- model helpers --------------------------------------------------------------------


def panels(d: Dashboard) -> list[Panel]:
    """Every panel, rows included, nested (collapsed-row) panels too."""
    out: list[Panel] = []

    def visit(items: list[Panel]) -> None:
        for p in items:
            out.append(p)
            visit(p.get("panels") or [])

    visit(d.get("panels") or [])
    return out


def data_panels(d: Dashboard) -> list[Panel]:
    return [p for p in panels(d) if p.get("type") != "row"]


def targets(d: Dashboard) -> Iterator[tuple[Panel, int, dict[str, Any]]]:
    for p in data_panels(d):
        for i, t in enumerate(p.get("targets") or []):
            yield p, i, t


def templates(d: Dashboard) -> list[dict[str, Any]]:
    return list((d.get("templating") or {}).get("list") or [])


def template_query(t: dict[str, Any]) -> str:
    q = t.get("query", "")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or ""


def datasource_uid(ds: Any) -> str:
    if ds is None:
        return ""
    if isinstance(ds, str):
        return ds
    return str(ds.get("uid", ""))


def _current_value(t: dict[str, Any]) -> str:
    value = (t.get("current") or {}).get("value", "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


_VARIABLE = re.compile(r"\$(\w+)|\$\{([^}]+)\}|\[\[([^\[\]]+)\]\]")


def expand_variables(expr: str, variables: list[dict[str, Any]],
                     values: dict[str, str] | None = None) -> str:
    """Upstream's expansion: variables outside double-quoted strings get sample values.

    ``values`` overrides the sample value of named variables (used by the live test).
    """
    values = values or {}

    def sample(name: str) -> str:
        name = name.split(":")[0]
        if name in values:
            return values[name]
        if name in GLOBALS:
            return GLOBALS[name]
        for v in variables:
            current = _current_value(v) if v.get("name") == name else None
            if current and not current.startswith("$"):
                return current
        return name

    parts = expr.split('"')
    for i in range(0, len(parts), 2):
        parts[i] = _VARIABLE.sub(lambda mt: sample(next(g for g in mt.groups() if g)), parts[i])
    return '"'.join(parts)


def parse(expr: str, variables: list[dict[str, Any]]) -> Any:
    return pp.parse(expand_variables(expr, variables))


def walk(node: Any, parents: tuple[Any, ...] = ()) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every node of a promql-parser AST with its ancestors (closest last)."""
    yield node, parents
    below = (*parents, node)
    if isinstance(node, pp.AggregateExpr):
        if node.param is not None:
            yield from walk(node.param, below)
        yield from walk(node.expr, below)
    elif isinstance(node, pp.BinaryExpr):
        yield from walk(node.lhs, below)
        yield from walk(node.rhs, below)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from walk(arg, below)
    elif isinstance(node, pp.MatrixSelector):
        yield from walk(node.vector_selector, below)
    elif isinstance(node, (pp.SubqueryExpr, pp.ParenExpr, pp.UnaryExpr)):
        yield from walk(node.expr, below)


def selectors(node: Any) -> list[Any]:
    return [n for n, _ in walk(node) if isinstance(n, pp.VectorSelector)]


def matchers(selector: Any) -> list[Any]:
    return list(selector.matchers.matchers)


def metric_name(selector: Any) -> str:
    if selector.name:
        return str(selector.name)
    for mt in matchers(selector):
        if mt.name == "__name__" and mt.op == pp.MatchOp.Equal:
            return str(mt.value)
    return ""


def is_counter_series(name: str) -> bool:
    """Counters (``_total``) and histogram buckets/counts/sums of the catalogue."""
    if name.endswith("_total"):
        return True
    histograms = {s.name for s in m.CATALOGUE if s.kind == "histogram"}
    return any(name == h + suffix for h in histograms for suffix in ("_bucket", "_count", "_sum"))


def catalogue_series() -> set[str]:
    names = set()
    for spec in (*m.CATALOGUE, *m.SERVER_LOG_CATALOGUE):
        if spec.kind == "histogram":
            names.update(spec.name + s for s in ("_bucket", "_count", "_sum"))
        else:
            names.add(spec.series_name)
    return names


def _prometheus_datasource(d: Dashboard) -> bool:
    ds = [t for t in templates(d) if str(t.get("type", "")).lower() == "datasource"]
    return bool(ds) and template_query(ds[0]) == "prometheus"


def _parsed_targets(d: Dashboard) -> Iterator[tuple[Panel, int, Any]]:
    variables = templates(d)
    for p, i, t in targets(d):
        try:
            yield p, i, parse(t.get("expr", ""), variables)
        except ValueError:
            continue  # invalid PromQL is target-promql-rule's finding


# --- the upstream rules ---------------------------------------------------------------


def template_datasource_rule(d: Dashboard) -> list[Finding]:
    rule = "template-datasource-rule"
    ds = [t for t in templates(d) if str(t.get("type", "")).lower() == "datasource"]
    if not ds:
        return [Finding(rule, "does not have a templated data source")]
    out = []
    for t in ds:
        query = template_query(t)
        names = {f"{query.lower()}_datasource"} | ({"datasource"} if len(ds) == 1 else set())
        labels = {f"{query.title()} data source"} | ({"Data source"} if len(ds) == 1 else set())
        if t.get("name") not in names:
            out.append(Finding(rule, f"templated data source variable named {t.get('name')!r}, "
                                     f"should be one of {sorted(names)}"))
        if t.get("label") not in labels:  # a warning upstream; --strict fails on it
            out.append(Finding(rule, f"templated data source variable labeled "
                                     f"{t.get('label')!r}, should be one of {sorted(labels)}"))
    return out


def _check_filter_template(d: Dashboard, name: str, rule: str) -> list[Finding]:
    if not _prometheus_datasource(d):
        return []
    t = next((t for t in templates(d) if t.get("name") == name), None)
    if t is None:
        return [Finding(rule, f"is missing the {name} template")]
    out = []
    if datasource_uid(t.get("datasource")) not in ("$datasource", "${datasource}"):
        out.append(Finding(rule, f"{name} template should use datasource '$datasource', is "
                                 f"{datasource_uid(t.get('datasource'))!r}"))
    if t.get("type") != "query":
        out.append(Finding(rule, f"{name} template should be a Prometheus query"))
    if t.get("label") != name.title():
        out.append(Finding(rule, f"{name} template should be labeled {name.title()!r}"))
    if not t.get("multi"):
        out.append(Finding(rule, f"{name} template should be a multi select"))
    if t.get("allValue") != ".+":
        out.append(Finding(rule, f"{name} template allValue should be '.+', is "
                                 f"{t.get('allValue')!r}"))
    return out


def template_job_rule(d: Dashboard) -> list[Finding]:
    return _check_filter_template(d, "job", "template-job-rule")


def template_instance_rule(d: Dashboard) -> list[Finding]:
    return _check_filter_template(d, "instance", "template-instance-rule")


_LABEL_QUERY = re.compile(r"^\s*([a-z_]+)\((.*)\)\s*$", re.DOTALL)


def template_label_promql_rule(d: Dashboard) -> list[Finding]:
    """Upstream accepts a partial parse; this port parses the selector argument fully."""
    rule = "template-label-promql-rule"
    if not _prometheus_datasource(d):
        return []
    out = []
    variables = templates(d)
    for t in variables:
        if t.get("type") != "query":
            continue
        query = template_query(t)
        match = _LABEL_QUERY.match(query)
        if match is None:
            out.append(Finding(rule, f"template {t.get('name')!r} invalid query {query!r}"))
            continue
        function, args = match.groups()
        if function not in LABEL_FUNCTIONS:
            out.append(Finding(rule, f"template {t.get('name')!r} invalid function {function!r}"))
            continue
        expr = args
        if function in ("label_values", "label_names"):
            head, _, label = args.rpartition(",")
            if function == "label_values":
                if not head or not re.fullmatch(r"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*", label):
                    out.append(Finding(rule, f"template {t.get('name')!r}: label_values needs "
                                             f"(selector, label), got {args!r}"))
                    continue
                expr = head
        try:
            parse(expr, variables)
        except ValueError as exc:
            out.append(Finding(rule, f"template {t.get('name')!r} invalid PromQL {expr!r}: {exc}"))
    return out


def template_on_time_change_reload_rule(d: Dashboard) -> list[Finding]:
    return [Finding("template-on-time-change-reload-rule",
                    f"template {t.get('name')!r} should refresh on time range change (2), is "
                    f"{t.get('refresh')!r}")
            for t in templates(d) if t.get("type") == "query" and t.get("refresh") != 2]


def panel_datasource_rule(d: Dashboard) -> list[Finding]:
    rule = "panel-datasource-rule"
    allowed = set()
    for t in templates(d):
        if str(t.get("type", "")).lower() == "datasource":
            allowed |= {f"${t['name']}", f"${{{t['name']}}}"}
    out = []
    for p in data_panels(d):
        uid = datasource_uid(p.get("datasource"))
        if uid not in allowed:
            out.append(Finding(rule, f"does not use a templated datasource, uses {uid!r}",
                               p.get("title", "")))
        for i, t in enumerate(p.get("targets") or []):
            if "datasource" in t and datasource_uid(t["datasource"]) not in allowed:
                out.append(Finding(rule, "target does not use the templated datasource",
                                   p.get("title", ""), i))
    return out


def panel_title_description_rule(d: Dashboard) -> list[Finding]:
    return [Finding("panel-title-description-rule",
                    f"has missing title or description (title {p.get('title')!r})",
                    p.get("title", ""))
            for p in data_panels(d)
            if not str(p.get("title", "")).strip() or not str(p.get("description", "")).strip()]


def configured_unit(p: Panel) -> str:
    fc = p.get("fieldConfig") or {}
    for override in fc.get("overrides") or []:
        for prop in override.get("properties") or []:
            if prop.get("id") == "unit":
                return str(prop.get("value", ""))
    return str((fc.get("defaults") or {}).get("unit", ""))


def panel_units_rule(d: Dashboard) -> list[Finding]:
    """Every panel, not only upstream's types, and value mappings do not excuse a unit."""
    rule = "panel-units-rule"
    out = []
    for p in data_panels(d):
        unit = configured_unit(p)
        if unit not in VALID_UNITS:
            out.append(Finding(rule, f"has no or invalid units defined: {unit!r}",
                               p.get("title", "")))
        if p.get("type") == "heatmap":
            opts = p.get("options") or {}
            for where in ("yAxis", "cellValues"):
                unit = str((opts.get(where) or {}).get("unit", ""))
                if unit not in VALID_UNITS:
                    out.append(Finding(rule, f"heatmap {where} has no or invalid unit {unit!r}",
                                       p.get("title", "")))
    return out


def panel_no_targets_rule(d: Dashboard) -> list[Finding]:
    return [Finding("panel-no-targets-rule", "has no targets", p.get("title", ""))
            for p in data_panels(d) if not p.get("targets")]


def target_logql_rule(d: Dashboard) -> list[Finding]:
    """N/A: the dashboard has no Loki queries; this fails if one appears (write the rule)."""
    out = []
    for t in templates(d):
        if str(t.get("type", "")).lower() == "datasource" and template_query(t) == "loki":
            out.append(Finding("target-logql-rule", "a Loki datasource variable appeared"))
    for p, i, t in targets(d):
        if "loki" in str((t.get("datasource") or {}).get("type", "")) or "expr" not in t:
            out.append(Finding("target-logql-rule", "non-Prometheus target", p.get("title", ""), i))
    return out


def target_logql_auto_rule(d: Dashboard) -> list[Finding]:
    """N/A for the same reason: every target is PromQL (checked by target-logql-rule)."""
    return [Finding("target-logql-auto-rule", "Loki target without $__auto", p.get("title", ""), i)
            for p, i, t in targets(d)
            if "loki" in str((t.get("datasource") or {}).get("type", ""))
            and "$__auto" not in t.get("expr", "")]


def target_promql_rule(d: Dashboard) -> list[Finding]:
    """Every target of every panel (upstream: an allow-list of panel types) parses."""
    out = []
    variables = templates(d)
    for p, i, t in targets(d):
        expr = t.get("expr", "")
        if not expr.strip():
            out.append(Finding("target-promql-rule", "empty query", p.get("title", ""), i))
            continue
        try:
            parse(expr, variables)
        except ValueError as exc:
            out.append(Finding("target-promql-rule", f"invalid PromQL {expr!r}: {exc}",
                               p.get("title", ""), i))
    return out


def target_rate_interval_rule(d: Dashboard) -> list[Finding]:
    """Upstream: a range inside rate/irate is $__rate_interval. Stricter here: no subquery,
    and every other range (increase over the whole dashboard range) is $__range."""
    rule = "target-rate-interval-rule"
    out = []
    for p, i, node in _parsed_targets(d):
        for n, parents in walk(node):
            if isinstance(n, pp.SubqueryExpr):
                out.append(Finding(rule, "subqueries are not used", p.get("title", ""), i))
            if not isinstance(n, pp.MatrixSelector):
                continue
            call = parents[-1] if parents else None
            name = call.func.name if isinstance(call, pp.Call) else ""
            if name in RATE_FUNCTIONS and n.range != RATE_INTERVAL_SAMPLE:
                out.append(Finding(rule, f"{name}() should use $__rate_interval",
                                   p.get("title", ""), i))
            elif name not in RATE_FUNCTIONS and n.range not in (RATE_INTERVAL_SAMPLE,
                                                                 RANGE_SAMPLE):
                out.append(Finding(rule, f"{name or 'a'} range should be $__rate_interval or "
                                         f"$__range", p.get("title", ""), i))
            if n.range == RATE_INTERVAL_SAMPLE and not isinstance(call, pp.Call):
                out.append(Finding(rule, "$__rate_interval used outside a function",
                                   p.get("title", ""), i))
    return out


def _required_matcher_rule(d: Dashboard, label: str, rule: str) -> list[Finding]:
    if not _prometheus_datasource(d):
        return []
    out = []
    for p, i, node in _parsed_targets(d):
        for sel in selectors(node):
            found = [mt for mt in matchers(sel) if mt.name == label]
            if not any(mt.op == pp.MatchOp.Re and mt.value == f"${label}" for mt in found):
                out.append(Finding(rule, f"{metric_name(sel)}: {label} selector "
                                         f"{label}=~\"${label}\" not found",
                                   p.get("title", ""), i))
    return out


def target_job_rule(d: Dashboard) -> list[Finding]:
    return _required_matcher_rule(d, "job", "target-job-rule")


def target_instance_rule(d: Dashboard) -> list[Finding]:
    return _required_matcher_rule(d, "instance", "target-instance-rule")


def target_counter_agg_rule(d: Dashboard) -> list[Finding]:
    """Upstream looks at ``_total`` names; histogram series of the catalogue count too."""
    rule = "target-counter-agg-rule"
    out = []
    for p, i, node in _parsed_targets(d):
        for n, parents in walk(node):
            if not isinstance(n, pp.VectorSelector) or not is_counter_series(metric_name(n)):
                continue
            ok = (len(parents) >= 2 and isinstance(parents[-1], pp.MatrixSelector)
                  and isinstance(parents[-2], pp.Call)
                  and parents[-2].func.name in COUNTER_FUNCTIONS)
            if not ok:
                out.append(Finding(rule, f"counter {metric_name(n)} is not aggregated with "
                                         f"rate, irate or increase", p.get("title", ""), i))
    return out


def uneditable_dashboard(d: Dashboard) -> list[Finding]:
    return ([Finding("uneditable-dashboard", "is editable, it should be 'editable: false'")]
            if d.get("editable", True) else [])


UPSTREAM_RULES: dict[str, Callable[[Dashboard], list[Finding]]] = {
    "template-datasource-rule": template_datasource_rule,
    "template-job-rule": template_job_rule,
    "template-instance-rule": template_instance_rule,
    "template-label-promql-rule": template_label_promql_rule,
    "template-on-time-change-reload-rule": template_on_time_change_reload_rule,
    "panel-datasource-rule": panel_datasource_rule,
    "panel-title-description-rule": panel_title_description_rule,
    "panel-units-rule": panel_units_rule,
    "panel-no-targets-rule": panel_no_targets_rule,
    "target-logql-rule": target_logql_rule,
    "target-logql-auto-rule": target_logql_auto_rule,
    "target-promql-rule": target_promql_rule,
    "target-rate-interval-rule": target_rate_interval_rule,
    "target-job-rule": target_job_rule,
    "target-instance-rule": target_instance_rule,
    "target-counter-agg-rule": target_counter_agg_rule,
    "uneditable-dashboard": uneditable_dashboard,
}


# --- project rules --------------------------------------------------------------------


def catalogue_metrics_rule(d: Dashboard) -> list[Finding]:
    """Every series read is a catalogue metric (or the alert pack's ALERTS): no typo, no
    recording rule, so the dashboard works without the rules loaded."""
    known = catalogue_series() | set(ALERT_SERIES)
    return [Finding("catalogue-metrics-rule", f"{metric_name(sel)!r} is not in metrics.py",
                    p.get("title", ""), i)
            for p, i, node in _parsed_targets(d) for sel in selectors(node)
            if metric_name(sel) not in known]


def filter_variables_rule(d: Dashboard) -> list[Finding]:
    """Every selector is filtered by every label variable, like job and instance."""
    out = []
    for label in ("cluster", "namespace", "agent_name"):
        out += _required_matcher_rule(d, label, "filter-variables-rule")
    return out


def variables_rule(d: Dashboard) -> list[Finding]:
    rule = "variables-rule"
    names = [t.get("name") for t in templates(d)]
    expected = ["datasource", *FILTER_VARIABLES, "target_load"]
    out = [] if names == expected else [Finding(rule, f"variables {names}, expected {expected}")]
    by_name = {t.get("name"): t for t in templates(d)}
    for name in FILTER_VARIABLES:
        t = by_name.get(name) or {}
        if not t.get("includeAll") or not t.get("multi"):
            out.append(Finding(rule, f"{name} should be multi-select with All"))
        want = ".+" if name in ("job", "instance") else ".*"  # .* also matches a missing label
        if t.get("allValue") != want:
            out.append(Finding(rule, f"{name} allValue should be {want!r}"))
    load = by_name.get("target_load") or {}
    if load.get("type") not in ("textbox", "constant") or _current_value(load) == "":
        out.append(Finding(rule, "target_load should be a textbox/constant with a value"))
    return out


def layout_rule(d: Dashboard) -> list[Finding]:
    rule = "layout-rule"
    out = []
    ids = [p.get("id") for p in panels(d)]
    if len(set(ids)) != len(ids) or None in ids:
        out.append(Finding(rule, f"panel ids must be set and unique: {ids}"))
    cells: dict[tuple[int, int], str] = {}
    for p in panels(d):
        g = p.get("gridPos") or {}
        x, y, w, h = (g.get(k, -1) for k in ("x", "y", "w", "h"))
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > 24:
            out.append(Finding(rule, f"bad gridPos {g}", p.get("title", "")))
            continue
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    out.append(Finding(rule, f"overlaps {cells[(cx, cy)]!r}", p.get("title", "")))
                    break
                cells[(cx, cy)] = p.get("title", "")
            else:
                continue
            break
    return out


PROJECT_RULES: dict[str, Callable[[Dashboard], list[Finding]]] = {
    "catalogue-metrics-rule": catalogue_metrics_rule,
    "filter-variables-rule": filter_variables_rule,
    "variables-rule": variables_rule,
    "layout-rule": layout_rule,
}

ALL_RULES = {**UPSTREAM_RULES, **PROJECT_RULES}


# --- exclusions (upstream's .lint format) ---------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    rule: str
    reason: str
    panel: str = ""
    target: int | None = None

    def matches(self, f: Finding) -> bool:
        return (f.rule == self.rule and (not self.panel or self.panel == f.panel)
                and (self.target is None or self.target == f.target))


def load_exclusions(path: Path) -> list[Exclusion]:
    data = yaml.safe_load(path.read_text()) or {}
    out = []
    for rule, body in (data.get("exclusions") or {}).items():
        body = body or {}
        entries = body.get("entries") or []
        if not entries:
            out.append(Exclusion(rule, body.get("reason", "")))
        for e in entries:
            idx = e.get("targetIdx")
            out.append(Exclusion(rule, e.get("reason") or body.get("reason", ""),
                                 e.get("panel", ""), None if idx in (None, "") else int(idx)))
    return out


def lint(d: Dashboard, rule: str, exclusions: list[Exclusion] = ()) -> list[Finding]:
    return [f for f in ALL_RULES[rule](d) if not any(e.matches(f) for e in exclusions)]
