"""Fuzzy confidence: ten memberships, their weighted sum F_t, the neural blend and the size.

Memberships (each in [0, 1]; SPEC §4; breakpoints configurable in ``FuzzyParams``)::

    mtf           1 − |C − 0.5|·2                           skfuzzy.trimf(C, [0, .5, 1])
    iv_rank       min(1, IVR/60)                            skfuzzy.trapmf(IVR, [0, 60, 100, 100])
    vix           1 at VIX <= 12, linear to 0 at >= 30      skfuzzy.trapmf(VIX, [0, 0, 12, 30])
    rsi           1 in [40, 60]; RSI/40; (100 − RSI)/40      skfuzzy.trapmf(RSI, [0, 40, 60, 100])
    adx           1 at <= 25, linear to 0 at >= 40          skfuzzy.trapmf(ADX, [0, 0, 25, 40])
    bollinger     0.7·(1 − |pos − .5|·2) + 0.3·max(0, 1 − width/0.04)
                  = 0.7·trimf(pos, [0, .5, 1]) + 0.3·trimf(width, [0, 0, .04])
                  (the position term is floored at 0 when price is outside the bands)
    stochastic    1 in [30, 70]; %K/30; (100 − %K)/30        skfuzzy.trapmf(%K, [0, 30, 70, 100])
    psar          1 − |p|, p = clip((close − SAR)/(2·ATR14), −1, 1)   skfuzzy.trimf(p, [−1, 0, 1])
    volume        min(1, ratio/0.8)                         plain numpy (unbounded domain: no trapmf)
    sma_distance  1 − |D|/0.02 for |D| <= 0.02 else 0       skfuzzy.trimf(D, [−.02, 0, .02])

``F_t = Σ_j w_j μ_j`` (weights sum to 1).  A NaN membership (factor unavailable) is dropped
and the remaining weights renormalised, ``F_t = Σ_avail w μ / Σ_avail w`` (NaN if nothing is
available); with every factor available this is exactly ``Σ w μ``.

Neural blend ``C = w_n·μ_neural + (1 − w_n)·F_t`` with
``μ_neural = conf·p_neutral + (1 − conf)·F_t`` — the forecaster's probability of a neutral
(range-bound) next move, trusted in proportion to its confidence.  No forecaster (``None``)
or zero confidence leaves ``F_t`` unchanged.

Size ``g = F·(1 − σ*)``, ``Q = floor(Q0·g)``: F = 0.65, σ* = 0.30, Q0 = 5 → g = 0.455, Q = 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import skfuzzy as fuzz
from numpy.typing import ArrayLike

from core.config import DEFAULT_FUZZY_WEIGHTS, IndicatorConfig
from core.dto import ConfigError, ForecastState

FACTORS: tuple[str, ...] = (
    "mtf", "iv_rank", "vix", "rsi", "adx", "bollinger", "stochastic", "psar", "volume", "sma_distance",
)
DEFAULT_WEIGHTS: Mapping[str, float] = DEFAULT_FUZZY_WEIGHTS  # one source of defaults: core.config
# raw inputs each factor reads (keys of the ``raw`` mapping given to ``memberships``)
FACTOR_INPUTS: dict[str, tuple[str, ...]] = {
    "mtf": ("mtf_consensus",), "iv_rank": ("iv_rank",), "vix": ("vix",), "rsi": ("rsi",), "adx": ("adx",),
    "bollinger": ("bb_position", "bb_width"), "stochastic": ("stoch_k",), "psar": ("psar_p",),
    "volume": ("volume_ratio",), "sma_distance": ("sma_distance",),
}
WEIGHT_TOLERANCE = 1e-6
_INDICATORS = IndicatorConfig()  # breakpoints the run config also sets take their defaults from it


@dataclass(frozen=True, slots=True)
class FuzzyParams:
    """Breakpoints of the memberships (defaults = SPEC §4; the optimizer varies some of them).

    Breakpoints that are also run-config options default to ``core.config.IndicatorConfig``'s values.
    """

    ivr_full: float = 60.0
    vix_low: float = 12.0
    vix_high: float = 30.0
    rsi_neutral_min: float = _INDICATORS.rsi_neutral_min
    rsi_neutral_max: float = _INDICATORS.rsi_neutral_max
    adx_low: float = _INDICATORS.adx_threshold_low
    adx_high: float = _INDICATORS.adx_threshold_high
    bb_width_scale: float = _INDICATORS.bbands_squeeze_threshold
    stoch_neutral_min: float = _INDICATORS.stoch_neutral_min
    stoch_neutral_max: float = _INDICATORS.stoch_neutral_max
    volume_full: float = 0.8
    sma_max_distance: float = _INDICATORS.sma_max_distance

    def __post_init__(self) -> None:
        pairs = [("vix_low", "vix_high", 0, None), ("rsi_neutral_min", "rsi_neutral_max", 0, 100),
                 ("adx_low", "adx_high", 0, None), ("stoch_neutral_min", "stoch_neutral_max", 0, 100)]
        for lo_name, hi_name, floor, cap in pairs:
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if not (floor < lo < hi and (cap is None or hi < cap)):
                raise ConfigError(f"fuzzy {lo_name}={lo} / {hi_name}={hi} are invalid; need {floor} < low < high")
        for name in ("ivr_full", "bb_width_scale", "volume_full", "sma_max_distance"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"fuzzy {name}={getattr(self, name)} is invalid; use a positive number")


@dataclass(frozen=True, slots=True, eq=False)
class FuzzyResult:
    """``confidence`` = F_t per bar; per factor its membership μ and weight w; ``raw`` inputs."""

    confidence: np.ndarray
    membership: dict[str, np.ndarray]
    weights: dict[str, float]
    raw: dict[str, np.ndarray]

    def row(self, i: int) -> dict[str, dict[str, float]]:
        """``{factor: {"raw": x, "membership": μ, "weight": w}}`` at bar i, plus ``{"F": ...}``."""
        out: dict[str, dict[str, float]] = {}
        for name in FACTORS:
            raw = {k: float(self.raw[k][i]) for k in FACTOR_INPUTS[name] if k in self.raw}
            out[name] = {**raw, "membership": float(self.membership[name][i]), "weight": self.weights[name]}
        out["F"] = {"confidence": float(self.confidence[i])}
        return out


def _mf(fn, x: ArrayLike, points: list[float]) -> np.ndarray:
    """Evaluate an skfuzzy membership on any-shape input; NaN stays NaN (skfuzzy would give 1)."""
    v = np.asarray(x, dtype=np.float64)
    flat = v.reshape(-1)
    out = np.full(flat.shape, np.nan)
    ok = np.isfinite(flat)
    out[ok] = fn(flat[ok], np.asarray(points, dtype=np.float64))
    return out.reshape(v.shape)


def _volume_membership(ratio: ArrayLike, full: float) -> np.ndarray:
    r = np.asarray(ratio, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(r), np.clip(r / full, 0.0, 1.0), np.nan)


def memberships(raw: Mapping[str, ArrayLike], params: FuzzyParams | None = None) -> dict[str, np.ndarray]:
    """The ten memberships μ_j from raw inputs keyed as in ``FACTOR_INPUTS`` (missing key → NaN)."""
    p = params or FuzzyParams()
    shape = np.shape(next(iter(raw.values()))) if raw else (0,)

    def get(key: str) -> np.ndarray:
        return np.asarray(raw[key], dtype=np.float64) if key in raw else np.full(shape, np.nan)

    ivr = np.clip(get("iv_rank"), 0.0, 100.0)
    return {
        "mtf": _mf(fuzz.trimf, get("mtf_consensus"), [0.0, 0.5, 1.0]),
        "iv_rank": _mf(fuzz.trapmf, ivr, [0.0, p.ivr_full, 100.0, 100.0]),
        "vix": _mf(fuzz.trapmf, np.maximum(get("vix"), 0.0), [0.0, 0.0, p.vix_low, p.vix_high]),
        "rsi": _mf(fuzz.trapmf, get("rsi"), [0.0, p.rsi_neutral_min, p.rsi_neutral_max, 100.0]),
        "adx": _mf(fuzz.trapmf, np.maximum(get("adx"), 0.0), [0.0, 0.0, p.adx_low, p.adx_high]),
        "bollinger": 0.7 * _mf(fuzz.trimf, get("bb_position"), [0.0, 0.5, 1.0])
        + 0.3 * _mf(fuzz.trimf, np.maximum(get("bb_width"), 0.0), [0.0, 0.0, p.bb_width_scale]),
        "stochastic": _mf(fuzz.trapmf, get("stoch_k"), [0.0, p.stoch_neutral_min, p.stoch_neutral_max, 100.0]),
        "psar": _mf(fuzz.trimf, np.clip(get("psar_p"), -1.0, 1.0), [-1.0, 0.0, 1.0]),
        "volume": _volume_membership(get("volume_ratio"), p.volume_full),
        "sma_distance": _mf(fuzz.trimf, get("sma_distance"), [-p.sma_max_distance, 0.0, p.sma_max_distance]),
    }


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check names, signs and ``Σ w = 1 ± 1e-6``; return all ten weights (absent names → 0)."""
    unknown = sorted(set(weights) - set(FACTORS))
    if unknown:
        raise ConfigError(f"unknown fuzzy weight(s) {', '.join(unknown)}; allowed: {', '.join(FACTORS)}")
    bad = [k for k, w in weights.items() if not (np.isfinite(w) and w >= 0)]
    if bad:
        raise ConfigError(f"fuzzy weight {bad[0]}={weights[bad[0]]} is invalid; weights must be >= 0")
    total = float(sum(weights.values()))
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ConfigError(f"fuzzy weights sum to {total:.6f}, must sum to 1 (±1e-6); rescale them")
    return {k: float(weights.get(k, 0.0)) for k in FACTORS}


def normalize_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Rescale non-negative weights to sum to 1 (optimizer phase 6), then validate."""
    total = float(sum(weights.values()))
    if not total > 0:
        raise ConfigError("fuzzy weights are all zero; give at least one factor a positive weight")
    return validate_weights({k: float(w) / total for k, w in weights.items()})


def fuzzy_confidence(membership: Mapping[str, ArrayLike], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """``F_t = Σ_avail w_j μ_j / Σ_avail w_j`` (= ``Σ w μ`` when no μ is NaN); NaN if none available."""
    w = validate_weights(DEFAULT_WEIGHTS if weights is None else weights)
    num: np.ndarray | float = 0.0
    den: np.ndarray | float = 0.0
    for name in FACTORS:
        if w[name] == 0.0 or name not in membership:
            continue
        mu = np.asarray(membership[name], dtype=np.float64)
        ok = np.isfinite(mu)
        num = num + np.where(ok, w[name] * mu, 0.0)
        den = den + np.where(ok, w[name], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(den) > 0, np.asarray(num) / den, np.nan)


def evaluate(
    raw: Mapping[str, ArrayLike], weights: Mapping[str, float] | None = None, params: FuzzyParams | None = None
) -> FuzzyResult:
    """Memberships and F_t in one call, keeping everything the decision log needs."""
    w = validate_weights(DEFAULT_WEIGHTS if weights is None else weights)
    mu = memberships(raw, params)
    raw_arrays = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    return FuzzyResult(fuzzy_confidence(mu, w), mu, w, raw_arrays)


def neural_membership(f_t: ArrayLike, prob_neutral: ArrayLike, confidence: ArrayLike) -> np.ndarray:
    """``μ_neural = conf·p_neutral + (1 − conf)·F_t`` (conf clipped to [0, 1])."""
    conf = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    return conf * np.asarray(prob_neutral, dtype=np.float64) + (1.0 - conf) * np.asarray(f_t, dtype=np.float64)


def blend_neural(
    f_t: ArrayLike, forecast: ForecastState | None, neural_weight: float
) -> np.ndarray:
    """``C = w_n·μ_neural + (1 − w_n)·F_t`` (w_n: config ``fuzzy.neural_weight``); ``forecast=None``
    (no forecaster) returns F_t unchanged."""
    if not 0.0 <= neural_weight <= 1.0:
        raise ConfigError(f"neural weight {neural_weight} is invalid; use a value in [0, 1]")
    f = np.asarray(f_t, dtype=np.float64)
    if forecast is None:
        return f.copy()
    mu = neural_membership(f, forecast.prob_neutral, forecast.confidence)
    return neural_weight * mu + (1.0 - neural_weight) * f


def fuzzy_size(confidence: ArrayLike, sigma_star: ArrayLike, q0: int) -> tuple[np.ndarray, np.ndarray]:
    """``g = F·(1 − σ*)`` and ``Q = floor(Q0·g + 1e-9)`` contracts (0 where g is NaN or negative).

    The 1e-9 guards against binary rounding (0.6·0.5·10 = 2.9999999999999996 must give 3).
    """
    if q0 < 0:
        raise ConfigError(f"static maximum quantity Q0={q0} is invalid; use a non-negative integer")
    g = np.asarray(confidence, dtype=np.float64) * (1.0 - np.asarray(sigma_star, dtype=np.float64))
    q = np.floor(np.where(np.isfinite(g), np.maximum(g, 0.0), 0.0) * q0 + 1e-9).astype(np.int64)
    return g, q
