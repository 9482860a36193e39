"""Entry score, probability of profit and breach filter from short-strike deltas (SPEC §4, §5).

Entry score ``S = S_conf + S_prob + S_rules + S_dir``; enter when ``S >=`` config
``fuzzy.score_threshold`` (SPEC: 40)::

    S_conf   model confidence  > 0.7 → 30,  > 0.5 → 20,  > 0.3 → 10,  else 0
    S_prob   prob. of profit   > 0.6 → 30,  > 0.45 → 20, > 0.3 → 10,  else 0
    S_rules  rule signal       > 0.5 → 30,  >= 0 → 15,   else 0
    S_dir    |direction| < 0.5 → 10, else 0

Inputs: confidence in [0, 1] (fuzzy F_t or the neural blend C), rule signal in [−1, 1]
(the strategy's net rule vote), direction in [−1, 1] (e.g. ``prob_bull − prob_bear``).
A NaN input scores 0 for its component.

Deltas approximate the risk-neutral probability of finishing beyond a strike, so for a
short strangle / iron condor::

    P(breach) ≈ |Δ_short_put| + |Δ_short_call|,      POP ≈ 1 − P(breach)

Thresholds are the caller's (from ``core.config``, the single source of defaults): this
module holds only the SPEC's scoring tables.

Every function accepts scalars or arrays; scalar in → Python float / int / bool out.

>>> entry_score(0.65, 1 - 0.16 - 0.16, 0.2, 0.1).total
75.0
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from core.dto import ConfigError, ForecastState

CONF_TIERS = ((0.7, 30.0), (0.5, 20.0), (0.3, 10.0))
POP_TIERS = ((0.6, 30.0), (0.45, 20.0), (0.3, 10.0))


class EntryScore(NamedTuple):
    s_conf: np.ndarray | float
    s_prob: np.ndarray | float
    s_rules: np.ndarray | float
    s_dir: np.ndarray | float
    total: np.ndarray | float


def _out(x: np.ndarray) -> np.ndarray | float:
    return float(x) if np.ndim(x) == 0 else x


def _tiered(x: ArrayLike, tiers: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Points of the first tier whose threshold ``x`` strictly exceeds (0 if none / NaN)."""
    v = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.select([v > t for t, _ in tiers], [pts for _, pts in tiers], default=0.0)


def confidence_points(confidence: ArrayLike) -> np.ndarray | float:
    """S_conf: > 0.7 → 30, > 0.5 → 20, > 0.3 → 10."""
    return _out(_tiered(confidence, CONF_TIERS))


def probability_points(pop: ArrayLike) -> np.ndarray | float:
    """S_prob: > 0.6 → 30, > 0.45 → 20, > 0.3 → 10."""
    return _out(_tiered(pop, POP_TIERS))


def rule_points(rule_signal: ArrayLike) -> np.ndarray | float:
    """S_rules: > 0.5 → 30, >= 0 → 15."""
    v = np.asarray(rule_signal, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return _out(np.select([v > 0.5, v >= 0.0], [30.0, 15.0], default=0.0))


def direction_points(direction: ArrayLike) -> np.ndarray | float:
    """S_dir: |direction| < 0.5 → 10."""
    v = np.asarray(direction, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return _out(np.where(np.abs(v) < 0.5, 10.0, 0.0))


def entry_score(confidence: ArrayLike, pop: ArrayLike, rule_signal: ArrayLike, direction: ArrayLike) -> EntryScore:
    """``S = S_conf + S_prob + S_rules + S_dir`` with its components (see the module table)."""
    parts = [
        _tiered(confidence, CONF_TIERS),
        _tiered(pop, POP_TIERS),
        np.asarray(rule_points(rule_signal), dtype=np.float64),
        np.asarray(direction_points(direction), dtype=np.float64),
    ]
    s_conf, s_prob, s_rules, s_dir = parts
    return EntryScore(_out(s_conf), _out(s_prob), _out(s_rules), _out(s_dir), _out(s_conf + s_prob + s_rules + s_dir))


def should_enter(score: ArrayLike, threshold: float) -> np.ndarray | bool:
    """``S >= threshold`` (config ``fuzzy.score_threshold``)."""
    s = np.asarray(score, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        res = s >= threshold
    return bool(res) if res.ndim == 0 else res


def breach_probability(short_put_delta: ArrayLike, short_call_delta: ArrayLike) -> np.ndarray | float:
    """``P(breach) ≈ |Δ_short_put| + |Δ_short_call|``."""
    p = np.abs(np.asarray(short_put_delta, dtype=np.float64)) + np.abs(np.asarray(short_call_delta, dtype=np.float64))
    return _out(p)


def probability_of_profit(short_put_delta: ArrayLike, short_call_delta: ArrayLike) -> np.ndarray | float:
    """``POP ≈ 1 − |Δ_short_put| − |Δ_short_call|`` (floored at 0)."""
    return _out(np.maximum(1.0 - np.asarray(breach_probability(short_put_delta, short_call_delta)), 0.0))


def breach_filter(
    short_put_delta: ArrayLike, short_call_delta: ArrayLike, max_breach: float
) -> np.ndarray | bool:
    """True where ``P(breach) <= max_breach`` (config ``strategy.max_breach_prob``): the trade passes."""
    if not 0.0 < max_breach <= 2.0:
        raise ConfigError(f"max breach probability {max_breach} is invalid; use a value in (0, 2]")
    p = np.asarray(breach_probability(short_put_delta, short_call_delta))
    with np.errstate(invalid="ignore"):
        res = p <= max_breach
    return bool(res) if res.ndim == 0 else res


def direction_from_forecast(forecast: ForecastState | None) -> float:
    """Direction in [−1, 1] for S_dir: ``prob_bull − prob_bear`` (0 without a forecaster)."""
    return 0.0 if forecast is None else float(forecast.prob_bull - forecast.prob_bear)
