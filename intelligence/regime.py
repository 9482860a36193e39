"""Market-regime classification (vectorised) and regime-scaled wing widths.

Each bar gets one of the five ``core.dto.Regime`` values, encoded as an int code
(index into ``REGIME_ORDER``) or ``UNKNOWN_CODE`` (−1) while an input it needs is still
warming up.  Rules, first match wins (defaults in ``RegimeThresholds``):

1. ``CRASH_MODE`` — any of (the ``crash_triggers`` bits say which fired):
   * *level*: VIX >= 35 (the previous session's close; a market in panic);
   * *drop*: price down >= 3% from the previous session close (live, bar by bar);
   * *jump*: VIX up >= 20% on its previous value **and** VIX >= 25 **and** close < SMA_fast and
     close < SMA_slow (a volatility shock in a falling market, not a jump from a low base).
2. ``BULL_TREND``  — ADX >= 25 and close > SMA_fast > SMA_slow.
   ``BEAR_TREND``  — ADX >= 25 and close < SMA_fast < SMA_slow.
3. ``HIGH_VOL_RANGE`` — VIX >= 20 or IV rank >= 50.
4. ``LOW_VOL_RANGE`` — otherwise.

The crash thresholds are calibrated on 1999–2018 (README "Regimes", ``scripts/regime_table.py``):
CRASH_MODE marks the days a trader calls a crash or a panic (Q4 2008, Aug 2011, 2015-08-24,
2016-06-24, 2018-02-05) and never fires in 2017 or in 2004–2006; the former −4% drop let
Brexit day and 2015-08-24 pass, and the former jump rule without a VIX floor flattened the
book on −1.5% days at VIX 15 (2017-05-18, 2017-08-11, 2017-08-18).

A crash is detected from whichever crash input is present; any other result needs ADX,
both SMAs and VIX (IV rank may be NaN: it then simply does not vote for high vol).
``time_in_regime`` counts bars since the last change of code (0 on the bar of a change).
``crash_reason`` renders the numbers that fired (e.g. ``VIX 41.2 >= 35``) for exit and gate lines.

Wing width scales with the regime: ``REGIME_WING_MULTIPLIER`` = 0.8 (low vol), 1.0 (trends),
1.5 (high vol), 2.0 (crash).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from core.config import FilterConfig, IndicatorConfig
from core.dto import ConfigError, Regime

REGIME_ORDER: tuple[Regime, ...] = (
    Regime.LOW_VOL_RANGE,
    Regime.HIGH_VOL_RANGE,
    Regime.BULL_TREND,
    Regime.BEAR_TREND,
    Regime.CRASH_MODE,
)
REGIME_CODE: dict[Regime, int] = {r: i for i, r in enumerate(REGIME_ORDER)}
UNKNOWN_CODE = -1

REGIME_WING_MULTIPLIER: dict[Regime, float] = {
    Regime.LOW_VOL_RANGE: 0.8,
    Regime.HIGH_VOL_RANGE: 1.5,
    Regime.BULL_TREND: 1.0,
    Regime.BEAR_TREND: 1.0,
    Regime.CRASH_MODE: 2.0,
}


@dataclass(frozen=True, slots=True)
class RegimeThresholds:
    """Thresholds of the regime rules (VIX in index points, IV rank 0–100, moves as fractions).

    ``trend_adx`` and ``high_vol_vix`` are run-config options and default to ``core.config``'s
    ``indicators.adx_threshold_low`` and ``filters.vix_threshold_low``.
    """

    crash_vix: float = 35.0
    crash_vix_jump: float = 0.20
    crash_jump_vix_floor: float = 25.0
    crash_drop: float = 0.03
    trend_adx: float = IndicatorConfig().adx_threshold_low
    high_vol_vix: float = FilterConfig().vix_threshold_low
    high_vol_ivr: float = 50.0

    def __post_init__(self) -> None:
        for name in ("crash_vix", "crash_vix_jump", "crash_jump_vix_floor", "crash_drop", "trend_adx", "high_vol_vix",
                     "high_vol_ivr"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"regime threshold {name}={value} is invalid; use a positive number")
        if self.crash_jump_vix_floor > self.crash_vix:
            raise ConfigError(f"regime crash_jump_vix_floor={self.crash_jump_vix_floor} must not exceed "
                              f"crash_vix={self.crash_vix}; lower it")
        if self.high_vol_vix >= self.crash_vix:
            raise ConfigError(
                f"regime high_vol_vix={self.high_vol_vix} must be below crash_vix={self.crash_vix}; lower it"
            )


def _a(x: ArrayLike | None, n: int) -> np.ndarray:
    return np.full(n, np.nan) if x is None else np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))


CRASH_LEVEL, CRASH_DROP, CRASH_JUMP = 1, 2, 4  # bits of ``crash_triggers``


def crash_triggers(
    close: ArrayLike,
    sma_fast: ArrayLike,
    sma_slow: ArrayLike,
    vix: ArrayLike,
    vix_change: ArrayLike | None = None,
    day_return: ArrayLike | None = None,
    thresholds: RegimeThresholds | None = None,
) -> np.ndarray:
    """Int bitmask per bar of the CRASH_MODE rules that fire (0: none): ``CRASH_LEVEL`` (VIX),
    ``CRASH_DROP`` (day return), ``CRASH_JUMP`` (VIX jump at a high level in a falling market)."""
    th = thresholds or RegimeThresholds()
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    fast, slow, vx = _a(sma_fast, n), _a(sma_slow, n), _a(vix, n)
    jump, ret = _a(vix_change, n), _a(day_return, n)
    with np.errstate(invalid="ignore"):
        below = (c < fast) & (c < slow)
        level = vx >= th.crash_vix
        drop = ret <= -th.crash_drop
        shock = (jump >= th.crash_vix_jump) & (vx >= th.crash_jump_vix_floor) & below
    return (level * CRASH_LEVEL + drop * CRASH_DROP + shock * CRASH_JUMP).astype(np.int64)


def classify_regime(
    close: ArrayLike,
    adx: ArrayLike,
    sma_fast: ArrayLike,
    sma_slow: ArrayLike,
    vix: ArrayLike,
    iv_rank: ArrayLike | None = None,
    vix_change: ArrayLike | None = None,
    day_return: ArrayLike | None = None,
    thresholds: RegimeThresholds | None = None,
    triggers: ArrayLike | None = None,
) -> np.ndarray:
    """Int regime codes (``REGIME_ORDER`` index, −1 unknown) for every bar; see the module rules.

    ``vix_change`` is the relative change of VIX on its previous value; ``day_return`` is
    ``close / previous session close − 1``.  All arrays are aligned and the same length.
    ``triggers`` (from ``crash_triggers`` with the same inputs) saves recomputing them.
    """
    th = thresholds or RegimeThresholds()
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    adx_, fast, slow, vx = _a(adx, n), _a(sma_fast, n), _a(sma_slow, n), _a(vix, n)
    ivr = _a(iv_rank, n)
    trig = (crash_triggers(c, fast, slow, vx, vix_change, day_return, th) if triggers is None
            else np.asarray(triggers))
    with np.errstate(invalid="ignore"):
        crash = trig > 0
        trending = adx_ >= th.trend_adx
        bull = trending & (c > fast) & (fast > slow)
        bear = trending & (c < fast) & (fast < slow)
        high_vol = (vx >= th.high_vol_vix) | (ivr >= th.high_vol_ivr)
    known = np.isfinite(c) & np.isfinite(adx_) & np.isfinite(fast) & np.isfinite(slow) & np.isfinite(vx)
    codes = np.select(
        [crash, ~known, bull, bear, high_vol],
        [REGIME_CODE[Regime.CRASH_MODE], UNKNOWN_CODE, REGIME_CODE[Regime.BULL_TREND],
         REGIME_CODE[Regime.BEAR_TREND], REGIME_CODE[Regime.HIGH_VOL_RANGE]],
        default=REGIME_CODE[Regime.LOW_VOL_RANGE],
    )
    return codes.astype(np.int64)


def crash_reason(trigger: float, vix: float, day_return: float, vix_change: float,
                 thresholds: RegimeThresholds | None = None) -> str:
    """The numbers behind a CRASH_MODE bar, e.g. ``VIX 41.2 >= 35`` or ``day -3.4% <= -3%``
    (rules joined by ``; ``); "" when no rule fired or the trigger is unknown (NaN)."""
    if not np.isfinite(trigger) or trigger <= 0:
        return ""
    th = thresholds or RegimeThresholds()
    bits = int(trigger)
    parts = []
    if bits & CRASH_LEVEL:
        parts.append(f"VIX {vix:.1f} >= {th.crash_vix:g}")
    if bits & CRASH_DROP:
        parts.append(f"day {day_return:+.1%} <= {-th.crash_drop:.0%}")
    if bits & CRASH_JUMP:
        parts.append(f"VIX {vix_change:+.0%} to {vix:.1f} (>= {th.crash_vix_jump:+.0%}, >= {th.crash_jump_vix_floor:g})"
                     " with close below SMA20 and SMA50")
    return "; ".join(parts)


def time_in_regime(codes: ArrayLike) -> np.ndarray:
    """Bars since the code last changed: 0 on a change bar (and bar 0), then 1, 2, ..."""
    k = np.asarray(codes)
    n = len(k)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n)
    change = np.r_[True, k[1:] != k[:-1]]
    last_change = np.maximum.accumulate(np.where(change, idx, 0))
    return (idx - last_change).astype(np.int64)


def regime_of(code: int) -> Regime | None:
    """The ``Regime`` of an int code, ``None`` for ``UNKNOWN_CODE``."""
    return None if code == UNKNOWN_CODE else REGIME_ORDER[int(code)]


def regime_names(codes: ArrayLike) -> np.ndarray:
    """Object array of regime names (``"UNKNOWN"`` for −1), for logs and CSVs."""
    names = np.array([r.value for r in REGIME_ORDER] + ["UNKNOWN"], dtype=object)
    return names[np.asarray(codes, dtype=np.int64)]  # −1 indexes the trailing "UNKNOWN"


def regime_wing_multiplier(regime: Regime) -> float:
    """Wing-width multiplier of a regime (wider in high vol and crash, tighter in low vol)."""
    return REGIME_WING_MULTIPLIER[regime]


def regime_wing_width(base_width: float, regime: Regime | None, wing_min: float, wing_max: float) -> float:
    """``clip(round(base_width · multiplier), wing_min, wing_max)`` in whole dollars (base when unknown)."""
    mult = 1.0 if regime is None else REGIME_WING_MULTIPLIER[regime]
    return float(np.clip(np.round(base_width * mult), wing_min, wing_max))
