"""Panel factories on top of grafana-foundation-sdk builders.

Every factory takes a title, a description and a unit (the dashboard-linter's
panel-title-description and panel-units rules), reads from the ``$datasource``
variable (panel-datasource rule) and numbers its queries A, B, C...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import heatmap as heatmap_m
from grafana_foundation_sdk.models import prometheus as prom_m

DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Query:
    """One panel target."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Step:
    """One threshold step: ``value`` None is the base step."""

    color: str
    value: float | None = None


def _targets(queries: Sequence[Query], instant: bool = False,
             fmt: prom_m.PromQueryFormat | None = None) -> list[cogbuilder.Builder[Dataquery]]:
    out: list[cogbuilder.Builder[Dataquery]] = []
    for i, q in enumerate(queries):
        t = (prom_b.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DATASOURCE)
             .legend_format(q.legend or "__auto"))
        t = t.instant() if instant else t.range()
        if fmt is not None:
            t = t.format(fmt)
        out.append(t)
    return out


def _thresholds(steps: Sequence[Step]) -> dash_b.ThresholdsConfig:
    return (dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps([dash_m.Threshold(value=s.value, color=s.color) for s in steps]))


GREEN_IS_GOOD = (Step("green"),)


def _legend(placement: common_m.LegendPlacement = common_m.LegendPlacement.BOTTOM,
            calcs: Sequence[str] = ("lastNotNull", "max")) -> common_b.VizLegendOptions:
    return (common_b.VizLegendOptions().show_legend(True).placement(placement)
            .display_mode(common_m.LegendDisplayMode.TABLE).calcs(list(calcs)))


def _tooltip() -> common_b.VizTooltipOptions:
    return (common_b.VizTooltipOptions().mode(common_m.TooltipDisplayMode.MULTI)
            .sort(common_m.SortOrder.DESCENDING))


def stat_panel(title: str, description: str, unit: str, query: Query, *,
               steps: Sequence[Step] = GREEN_IS_GOOD, w: int = 4, h: int = 4,
               no_value: str | None = None, decimals: float | None = None) -> stat.Panel:
    p = (stat.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
         .targets(_targets([query], instant=True)).span(w).height(h)
         .thresholds(_thresholds(steps))
         .color_mode(common_m.BigValueColorMode.BACKGROUND)
         .graph_mode(common_m.BigValueGraphMode.NONE)
         .text_mode(common_m.BigValueTextMode.VALUE)
         .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if no_value is not None:
        p = p.no_value(no_value)
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def timeseries_panel(title: str, description: str, unit: str, queries: Sequence[Query], *,
                     w: int = 12, h: int = 8, stacked: bool = False, bars: bool = False,
                     min_val: float | None = 0, max_val: float | None = None,
                     dashed: str | None = None, steps: Sequence[Step] | None = None,
                     ) -> timeseries.Panel:
    """``dashed``: a regex of series names drawn as dashed reference lines.

    ``steps`` draws threshold lines (e.g. a deadline) on the graph.
    """
    p = (timeseries.Panel().title(title).description(description).unit(unit)
         .datasource(DATASOURCE).targets(_targets(queries)).span(w).height(h)
         .legend(_legend()).tooltip(_tooltip())
         .line_width(1).fill_opacity(25 if stacked else 10)
         .show_points(common_m.VisibilityMode.NEVER)
         .span_nulls(False))
    if bars:
        p = p.draw_style(common_m.GraphDrawStyle.BARS)
    if stacked:
        p = p.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    if steps is not None:
        p = (p.thresholds(_thresholds(steps))
             .thresholds_style(common_b.GraphThresholdsStyleConfig()
                               .mode(common_m.GraphThresholdsStyleMode.DASHED)))
    if dashed is not None:
        p = p.override_by_regexp(dashed, [
            dash_m.DynamicConfigValue(id_val="custom.lineStyle",
                                      value={"fill": "dash", "dash": [10, 10]}),
            dash_m.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            dash_m.DynamicConfigValue(id_val="custom.stacking", value={"mode": "none"}),
        ])
    return p


def heatmap_panel(title: str, description: str, y_unit: str, cell_unit: str, query: Query,
                  *, w: int = 12, h: int = 8) -> heatmap.Panel:
    """A heatmap of pre-bucketed Prometheus histogram series (``format: heatmap``)."""
    return (heatmap.Panel().title(title).description(description).unit(y_unit)
            .datasource(DATASOURCE)
            .targets(_targets([query], fmt=prom_m.PromQueryFormat.HEATMAP))
            .span(w).height(h).calculate(False)
            .y_axis(heatmap.YAxisConfig().unit(y_unit).decimals(2))
            .cell_values(heatmap.CellValues().unit(cell_unit))
            .color(heatmap.HeatmapColorOptions().mode(heatmap_m.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(heatmap_m.HeatmapColorScale.EXPONENTIAL)
                   .exponent(0.5).steps(64).fill("dark-orange"))
            .show_value(common_m.VisibilityMode.NEVER)
            .mode(common_m.TooltipDisplayMode.SINGLE).show_y_histogram()
            .show_legend())


def bargauge_panel(title: str, description: str, unit: str, query: Query, *,
                   steps: Sequence[Step], w: int = 12, h: int = 8,
                   min_val: float = 0, max_val: float | None = None) -> bargauge.Panel:
    """Instant values, one bar per series (e.g. per worker), largest first."""
    p = (bargauge.Panel().title(title).description(description).unit(unit)
         .datasource(DATASOURCE).targets(_targets([query], instant=True))
         .span(w).height(h).thresholds(_thresholds(steps)).min(min_val)
         .display_mode(common_m.BarGaugeDisplayMode.GRADIENT)
         .orientation(common_m.VizOrientation.HORIZONTAL)
         .show_unfilled(True)
         .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if max_val is not None:
        p = p.max(max_val)
    return p


def state_panel(title: str, description: str, unit: str, query: Query, *,
                states: Sequence[tuple[str, str, str]], w: int = 12, h: int = 8,
                ) -> statetimeline.Panel:
    """State over time; ``states`` are (value, text, colour) value mappings."""
    mapping = dash_m.ValueMap(options={
        value: dash_m.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, text, color) in enumerate(states)})
    return (statetimeline.Panel().title(title).description(description).unit(unit)
            .datasource(DATASOURCE).targets(_targets([query])).span(w).height(h)
            .mappings([mapping]).thresholds(_thresholds(GREEN_IS_GOOD))
            .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS))
            .show_value(common_m.VisibilityMode.NEVER).merge_values(True)
            .legend(common_b.VizLegendOptions().show_legend(True)
                    .placement(common_m.LegendPlacement.BOTTOM)
                    .display_mode(common_m.LegendDisplayMode.LIST))
            .tooltip(common_b.VizTooltipOptions().mode(common_m.TooltipDisplayMode.SINGLE)
                     .sort(common_m.SortOrder.NONE))
            .fill_opacity(80).line_width(0))


def table_panel(title: str, description: str, unit: str, query: Query, *,
                w: int = 24, h: int = 6, sort_by: str = "Value",
                hide: Sequence[str] = ()) -> table.Panel:
    """An instant query as a table, one row per series, label columns."""
    organize = dash_m.DataTransformerConfig(
        id_val="organize",
        options={"excludeByName": {name: True for name in ("Time", *hide)},
                 "renameByName": {}, "indexByName": {}})
    return (table.Panel().title(title).description(description).unit(unit)
            .datasource(DATASOURCE)
            .targets(_targets([query], instant=True, fmt=prom_m.PromQueryFormat.TABLE))
            .span(w).height(h).with_transformation(organize)
            .sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(True)]))


def row(title: str) -> dash_b.Row:
    return dash_b.Row(title).collapsed(False)
