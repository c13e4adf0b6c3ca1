"""Prometheus's own syntaxes that the project's configuration files use: durations and
label matchers, parsed once here for the alert pack, the dashboard and the web config.

Durations come in two dialects: Prometheus's (``1h30m``: whole counts, units ``y w d h m s
ms`` largest first, what rule files and the mixin configuration take) and Go's
``time.ParseDuration`` (``1.5h``, ``250ms``, ``100us``: what exporter-toolkit's web
configuration takes). One tokenizer reads both; the dialect decides what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# unit -> milliseconds, largest first (Prometheus's units)
_PROMETHEUS_UNITS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000,
                     "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
# unit -> seconds (Go's units)
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|[ywdhms])")


def parse_duration(text: str, *, go: bool = False) -> float | None:
    """Seconds in a duration string, or ``None`` when it is malformed.

    Prometheus syntax by default (``90s``, ``1h30m``; no fraction, no sign, each unit at
    most once and largest first); ``go=True`` for Go's syntax (``1.5h``, ``1m30s``,
    ``250ms``, ``100us``, and a bare ``0``).
    """
    if go and text == "0":
        return 0.0
    units = _GO_UNITS if go else _PROMETHEUS_UNITS
    order = list(units)
    pos, total, last = 0, 0.0, -1
    for match in _PART.finditer(text):
        number, unit = match.group(1), match.group(2)
        if match.start() != pos or unit not in units:
            return None
        if not go:
            rank = order.index(unit)
            if not number.isdigit() or rank <= last:
                return None
            last = rank
            total += int(number) * _PROMETHEUS_UNITS[unit] / 1000
        else:
            total += float(number) * _GO_UNITS[unit]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


@dataclass(frozen=True, order=True)
class Duration:
    """A Prometheus duration; ``str()`` gives its canonical text (``90s`` -> ``1m30s``)."""

    seconds: float

    @classmethod
    def parse(cls, text: str) -> Duration:
        seconds = parse_duration(text)
        if seconds is None:
            raise ValueError(text)
        return cls(round(seconds, 3))

    def __str__(self) -> str:
        millis = round(self.seconds * 1000)
        if millis == 0:
            return "0s"
        parts = []
        for suffix, unit in list(_PROMETHEUS_UNITS.items())[2:]:  # d h m s ms: what people write
            count, millis = divmod(millis, unit)
            if count:
                parts.append(f"{count}{suffix}")
        return "".join(parts)

    def scaled(self, factor: float) -> Duration:
        return Duration(round(self.seconds * factor, 3))


# --- label matchers -------------------------------------------------------------------

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_VALUE = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`\n]*`'
_MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_VALUE})\s*(,|$)")


class SelectorError(ValueError):
    """Text that is not a comma-separated list of PromQL label matchers."""


def parse_matchers(text: str) -> tuple[str, ...]:
    """``env="prod", team=~"a|b"`` -> ``('env="prod"', 'team=~"a|b"')``; ``SelectorError``
    (one line, the offending text shortened) otherwise.

    Surrounding braces and one trailing comma are accepted; values keep their quoting
    (``"..."``, ``'...'`` or backticks, as PromQL allows). A matcher on ``__name__`` is
    refused: it would change which metric every query reads.
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    matchers: list[str] = []
    pos = 0
    while pos < len(body):
        match = _MATCHER.match(body, pos)
        if match is None:
            rest = repr(body[pos:])
            rest = rest if len(rest) <= 60 else rest[:57] + "..."
            raise SelectorError(
                f"cannot parse label matchers at {rest}: expected name=\"value\", "
                'name!="value", name=~"regex" or name!~"regex", comma-separated')
        name, op, value = match.group(1), match.group(2), match.group(3)
        if name == "__name__":
            raise SelectorError("a matcher on __name__ would change which metric is read")
        matchers.append(f"{name}{op}{value}")
        pos = match.end()
        if match.group(4) == "," and pos >= len(body):
            break  # one trailing comma is fine
    return tuple(matchers)
