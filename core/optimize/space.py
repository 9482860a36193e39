"""The parameter space of the six-phase search (SPEC §7) and how a point becomes a config.

A point is a mapping of *search names* to values.  Search names are dotted config paths
(``exits.profit_pct``), except the fuzzy-weight factors ``fuzzy.weights.<factor>``: those are
set on the configured weights and the whole weight vector is renormalised to sum to 1 (SPEC:
"renormalised to sum 1").  ``point_key`` is the canonical text of a point: the journal's key,
the tie-breaker of equal fitness, and what makes results independent of evaluation order.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.config import AppConfig
from core.dto import ConfigError

Value = float | int | bool
Grid = dict[str, tuple[Value, ...]]

PHASE_NAMES = {1: "exits & risk", 2: "structure", 3: "filters", 4: "momentum", 5: "trend", 6: "fuzzy weights"}

# SPEC §7, with the SPEC's names mapped onto the config's keys
DEFAULT_GRIDS: dict[int, Grid] = {
    1: {"exits.profit_pct": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        "exits.loss_multiple": (1.0, 1.5, 2.0, 2.5, 3.0),
        "exits.max_hold_days": (10, 14, 21, 30),
        "risk.max_account_risk_per_trade": (0.01, 0.02, 0.03)},
    2: {"strategy.delta_low": (0.10, 0.12, 0.15),
        "strategy.delta_high": (0.20, 0.25, 0.30),
        "strategy.wing_min": (5.0, 10.0),
        "strategy.min_credit_ratio": (0.10, 0.15, 0.20),
        "strategy.use_skew_penalty": (False, True)},
    3: {"filters.ivr_min": (0.0, 10.0, 20.0, 30.0),
        "filters.vix_max": (25.0, 30.0, 40.0),
        "filters.vix_threshold_low": (15.0, 18.0, 20.0),
        "filters.max_volatility_pct": (0.02, 0.03, 0.04)},
    4: {"indicators.rsi_neutral_min": (30.0, 40.0),
        "indicators.rsi_neutral_max": (60.0, 70.0),
        "indicators.stoch_neutral_min": (20.0, 30.0),
        "indicators.stoch_neutral_max": (70.0, 80.0),
        "indicators.adx_threshold_low": (20.0, 25.0, 30.0),
        "indicators.use_adx_filter": (False, True)},
    5: {"indicators.bbands_squeeze_threshold": (0.01, 0.02, 0.03),
        "indicators.sma_max_distance": (0.01, 0.02, 0.03, 0.04),
        "indicators.psar_acceleration": (0.02, 0.025),
        "indicators.psar_max_acceleration": (0.20, 0.25),
        "indicators.use_psar_filter": (False, True)},
    6: {"fuzzy.neural_weight": (0.10, 0.20, 0.30),
        "fuzzy.weights.mtf": (0.10, 0.18, 0.25),
        "fuzzy.weights.iv_rank": (0.10, 0.14, 0.20),
        "fuzzy.weights.vix": (0.08, 0.11, 0.15),
        "fuzzy.weights.rsi": (0.05, 0.10, 0.15),
        "fuzzy.weights.adx": (0.05, 0.10, 0.15)},
}

WEIGHT_PREFIX = "fuzzy.weights."


def point_key(point: Mapping[str, Value]) -> str:
    """Canonical text of a point (sorted names, JSON values)."""
    return json.dumps({k: point[k] for k in sorted(point)}, separators=(",", ":"))


def grid_size(grid: Grid) -> int:
    return math.prod(len(v) for v in grid.values()) if grid else 0


def grid_points(grid: Grid) -> Iterator[dict[str, Value]]:
    """Every point of a grid, in a fixed order (names as given, values as listed)."""
    names = list(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        yield dict(zip(names, combo, strict=True))


def overrides_of(base: AppConfig, point: Mapping[str, Value]) -> dict[str, Any]:
    """Dotted config overrides of a point (fuzzy weights set, then renormalised to sum 1)."""
    out: dict[str, Any] = {}
    weights = dict(base.fuzzy.weights)
    touched = False
    for name, value in point.items():
        if name.startswith(WEIGHT_PREFIX):
            weights[name[len(WEIGHT_PREFIX):]] = float(value)
            touched = True
        else:
            out[name] = value
    if touched:
        total = sum(weights.values())
        if total <= 0:
            raise ConfigError("fuzzy weights of this point sum to 0; give at least one positive weight")
        out["fuzzy.weights"] = {k: v / total for k, v in weights.items()}
    return out


def apply_point(base: AppConfig, point: Mapping[str, Value]) -> AppConfig:
    """The validated config of a point (ConfigError when the combination is invalid)."""
    return base.with_overrides(overrides_of(base, point)) if point else base


@dataclass(frozen=True, slots=True)
class Space:
    """The phases to run, in order, each with its grid."""

    grids: dict[int, Grid]
    phases: tuple[int, ...]

    def grid(self, phase: int) -> Grid:
        return self.grids[phase]

    @property
    def total(self) -> int:
        return sum(grid_size(self.grids[p]) for p in self.phases)


def validate_name(base: AppConfig, name: str) -> None:
    """ConfigError unless ``name`` is a config key (or a fuzzy-weight factor) of a scalar value."""
    if name.startswith(WEIGHT_PREFIX):
        factor = name[len(WEIGHT_PREFIX):]
        if factor not in base.fuzzy.weights:
            raise ConfigError(f"optimizer grid: unknown fuzzy weight {factor!r}; allowed {sorted(base.fuzzy.weights)}")
        return
    section, _, key = name.partition(".")
    tree = base.to_json_dict()
    if section not in tree or not key or key not in tree[section]:
        raise ConfigError(f"optimizer grid: {name!r} is not a config key (use section.key, e.g. exits.profit_pct)")
    if isinstance(tree[section][key], dict | list):
        raise ConfigError(f"optimizer grid: {name!r} is not a single value and cannot be searched")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"exits": {"profit_pct": [..]}}`` (TOML dotted keys) -> ``{"exits.profit_pct": [..]}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def build_space(base: AppConfig, phases: Sequence[int], grids: Mapping[Any, Mapping[str, Any]] | None = None
                ) -> Space:
    """The phases asked for with the SPEC grids, a phase's grid replaced by ``grids[phase]`` when given."""
    merged: dict[int, Grid] = {p: dict(g) for p, g in DEFAULT_GRIDS.items()}
    for raw_phase, grid in (grids or {}).items():
        try:
            phase = int(raw_phase)
        except (TypeError, ValueError):
            raise ConfigError(f"optimizer grids: phase {raw_phase!r} is not a number 1-6") from None
        if phase not in PHASE_NAMES:
            raise ConfigError(f"optimizer grids: phase {phase} is not one of 1-6")
        clean: Grid = {}
        for name, values in _flatten(grid).items():
            validate_name(base, name)
            vals = tuple(values) if isinstance(values, list | tuple) else (values,)
            if not vals:
                raise ConfigError(f"optimizer grid phase {phase}: {name} has no values")
            clean[name] = vals
        merged[phase] = clean
    for p in phases:
        if p not in PHASE_NAMES:
            raise ConfigError(f"--phases: {p} is not a phase; choose from 1-6 (e.g. --phases 1,3)")
    order = tuple(sorted(set(phases)))
    for p in order:
        for name in merged[p]:
            validate_name(base, name)
    return Space(merged, order)
