"""Sensitivity steps of stress mode: each parameter one grid step down and up, clamped into the
range the config allows (``core.config`` field bounds)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.config import AppConfig


@dataclass(frozen=True, slots=True)
class Limits:
    """The allowed range of a config value: ``low`` / ``high`` bounds (None: open), each inclusive or not."""

    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True

    def clamp(self, x: float, current: float) -> float:
        """``x`` moved inside the range: onto an inclusive bound, or half way from ``current`` to an
        exclusive one (``wing_min`` 5 -> 0 with ``> 0`` becomes 2.5)."""
        if self.low is not None and (x < self.low or (x == self.low and not self.low_inclusive)):
            x = self.low if self.low_inclusive else self.low + (current - self.low) / 2.0
        if self.high is not None and (x > self.high or (x == self.high and not self.high_inclusive)):
            x = self.high if self.high_inclusive else self.high - (self.high - current) / 2.0
        return x

    def text(self) -> str:
        parts = [f"{'>=' if self.low_inclusive else '>'} {self.low:g}" if self.low is not None else "",
                 f"{'<=' if self.high_inclusive else '<'} {self.high:g}" if self.high is not None else ""]
        return ", ".join(p for p in parts if p) or "any value"


def field_limits(path: str) -> Limits:
    """The bounds (``ge``/``gt``/``le``/``lt``) the config declares for a dotted path."""
    section, name = path.split(".")
    model = AppConfig.model_fields[section].annotation
    info = model.model_fields[name]  # type: ignore[union-attr]  # every section is a pydantic model
    limits = Limits()
    for meta in info.metadata:
        for attr, low, inclusive in (("ge", True, True), ("gt", True, False), ("le", False, True),
                                     ("lt", False, False)):
            bound = getattr(meta, attr, None)
            if bound is not None and low:
                limits = replace(limits, low=float(bound), low_inclusive=inclusive)
            elif bound is not None:
                limits = replace(limits, high=float(bound), high_inclusive=inclusive)
    return limits


@dataclass(frozen=True, slots=True)
class ParamStep:
    """A parameter (dotted config path) and its step: a fixed ``step`` or the neighbours on ``grid``.

    Off the grid's ends the edge spacing is extrapolated one step (``0.10 -> 0.08`` on
    ``0.10, 0.12, 0.15``); the result is clamped into the parameter's allowed range
    (``Limits.clamp``); a step that cannot move (already at the limit) or that the config
    rejects (a cross-field rule) becomes a skipped row."""

    path: str
    step: float | None = None
    grid: tuple[float, ...] = ()

    def neighbours(self, value: float, limits: Limits | None = None) -> dict[str, float]:
        if self.step is not None:
            down, up = value - self.step, value + self.step
        else:
            g = sorted(self.grid)
            below, above = [x for x in g if x < value - 1e-12], [x for x in g if x > value + 1e-12]
            down = below[-1] if below else value - (g[1] - g[0])
            up = above[0] if above else value + (g[-1] - g[-2])
        if limits is not None:
            down, up = limits.clamp(down, value), limits.clamp(up, value)
        integer = isinstance(value, int) and not isinstance(value, bool)
        if integer and limits is not None:  # stay inside after rounding an exclusive half step
            down, up = math.ceil(down - 1e-9), math.floor(up + 1e-9)
        cast = int if integer else float
        return {"down": cast(round(down, 10)), "up": cast(round(up, 10))}


SENSITIVITY_PARAMS: tuple[ParamStep, ...] = (
    ParamStep("exits.profit_pct", step=0.10),
    ParamStep("exits.loss_multiple", step=0.5),
    ParamStep("exits.max_hold_days", grid=(10, 14, 21, 30)),
    ParamStep("strategy.delta_low", grid=(0.10, 0.12, 0.15)),
    ParamStep("strategy.delta_high", grid=(0.20, 0.25, 0.30)),
    ParamStep("strategy.wing_min", grid=(5, 10)),
    ParamStep("strategy.min_credit_ratio", step=0.05),
)
