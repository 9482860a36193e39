"""Market-structure features (SPEC §3): skew, opening gaps, SPY/QQQ ratio, cost of carry, SPY-ES divergence.

Vectorised and causal: a value at bar ``t`` uses data up to and including ``t`` only.
Thresholds compare with a 1e-12 slack so that a value equal to a threshold up to float
rounding (e.g. ``(100.19 - 100) / 100``) counts as *at* the threshold.
Thresholds that the run configuration owns (gap size, ratio z) have no default here: the
caller passes them from ``core.config`` (analytics imports nothing of the project).

* Skew ``= (IV_put15D - IV_call15D) / IV_ATM``; steep when ``> 0.15`` -> put wing + $5.
* Gap ``g = (open - prev_close) / prev_close``; small when ``|g| <= max_gap`` (SPEC: 0.0019,
  config ``gates.max_gap_pct``); direction +1 (up) when ``g > 0.0001``, -1 (down) when
  ``g < -0.0001``, else 0.
* SPY/QQQ ratio z-score over 50 bars: ``z_t = (R_t - mean(R_{t-49..t})) / std(R_{t-49..t}, ddof=1)``
  with ``R = SPY / QQQ``; bias -1 (bearish SPY) when ``z > z*``, +1 (bullish) when ``z < -z*``
  (SPEC: z* = 2, config ``gates.ratio_z_threshold``).
* Cost of carry ``F = S e^{(r - q) tau}``; basis ``= F_market - S``; backwardation (a stress
  flag) when the basis is negative.
* SPY-ES divergence ``d = SPY / (ES / 10) - 1``; signal ``sign(d)`` when ``|d| > 0.005``
  (+1: SPY rich against the future, -1: SPY cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

_TOL = 1e-12
STEEP_SKEW = 0.15
STEEP_SKEW_PUT_WING_EXTRA = 5.0
FLAT_GAP = 0.0001
RATIO_WINDOW = 50
ES_TO_SPY = 10.0
ES_DIVERGENCE = 0.005


# ---------------------------------------------------------------- skew
def skew_metric(iv_put_wing: ArrayLike, iv_call_wing: ArrayLike, iv_atm: ArrayLike) -> np.ndarray:
    """``(IV_put15D - IV_call15D) / IV_ATM`` (elementwise)."""
    return (np.asarray(iv_put_wing, float) - np.asarray(iv_call_wing, float)) / np.asarray(iv_atm, float)


def is_steep_skew(skew: ArrayLike, threshold: float = STEEP_SKEW) -> np.ndarray:
    """True where ``skew > threshold`` (strictly above)."""
    return np.asarray(skew, float) > threshold + _TOL


def put_wing_extra(
    skew: ArrayLike, threshold: float = STEEP_SKEW, extra: float = STEEP_SKEW_PUT_WING_EXTRA
) -> np.ndarray:
    """Dollars added to the put wing: ``extra`` where the skew is steep, else 0."""
    return np.where(is_steep_skew(skew, threshold), extra, 0.0)


class SmileSlice(Protocol):
    """What ``slice_skew`` reads of one expiry: arrays sorted by strike (``core.dto.ExpirySlice`` fits)."""

    @property
    def strikes(self) -> np.ndarray: ...
    @property
    def call_iv(self) -> np.ndarray: ...
    @property
    def put_iv(self) -> np.ndarray: ...
    @property
    def call_delta(self) -> np.ndarray: ...
    @property
    def put_delta(self) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SkewReading:
    iv_put_wing: float
    iv_call_wing: float
    iv_atm: float
    skew: float


def _iv_at_abs_delta(abs_delta: np.ndarray, iv: np.ndarray, target: float) -> float:
    ok = np.isfinite(abs_delta) & np.isfinite(iv)
    order = np.argsort(abs_delta[ok], kind="stable")
    return float(np.interp(target, abs_delta[ok][order], iv[ok][order]))


def slice_skew(expiry: SmileSlice, spot: float, wing_delta: float = 0.15) -> SkewReading:
    """Skew of one expiry: wing IVs interpolated linearly in |delta| at ``wing_delta`` and the
    ATM IV as the mean of call and put IV interpolated in strike at the spot."""
    iv_put = _iv_at_abs_delta(np.abs(expiry.put_delta), expiry.put_iv, wing_delta)
    iv_call = _iv_at_abs_delta(np.abs(expiry.call_delta), expiry.call_iv, wing_delta)
    mid_iv = 0.5 * (expiry.call_iv + expiry.put_iv)
    iv_atm = float(np.interp(spot, expiry.strikes, mid_iv))
    return SkewReading(iv_put, iv_call, iv_atm, float(skew_metric(iv_put, iv_call, iv_atm)))


# ---------------------------------------------------------------- gaps
def classify_gaps(open_: ArrayLike, prev_close: ArrayLike, flat: float = FLAT_GAP) -> pd.DataFrame:
    """Columns ``gap`` (signed), ``gap_abs`` and ``direction`` (+1 up, -1 down, 0 flat)."""
    o = np.asarray(open_, float)
    pc = np.asarray(prev_close, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (o - pc) / pc
    direction = np.where(gap > flat + _TOL, 1, np.where(gap < -flat - _TOL, -1, 0))
    index = open_.index if isinstance(open_, pd.Series) else None
    return pd.DataFrame({"gap": gap, "gap_abs": np.abs(gap), "direction": direction}, index=index)


def is_small_gap(gap: ArrayLike, max_gap: float) -> np.ndarray:
    """True where ``|gap| <= max_gap`` (NaN -> False); ``max_gap`` is config ``gates.max_gap_pct``."""
    with np.errstate(invalid="ignore"):
        return np.abs(np.asarray(gap, float)) <= max_gap + _TOL


def daily_gaps(daily: pd.DataFrame) -> pd.DataFrame:
    """Gaps of daily bars: each session's open against the previous session's close (first row NaN gap)."""
    return classify_gaps(daily["open"], daily["close"].shift(1))


def session_gaps(bars: pd.DataFrame) -> pd.DataFrame:
    """Gaps of intraday bars, one row per session date: first open against the prior session's last close."""
    idx = pd.DatetimeIndex(bars.index)
    day = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    grouped = bars.groupby(day)
    out = classify_gaps(grouped["open"].first(), grouped["close"].last().shift(1))
    out.index.name = "date"
    return out


# ---------------------------------------------------------------- SPY / QQQ ratio
def ratio_zscore(spy: pd.Series, qqq: pd.Series, window: int = RATIO_WINDOW) -> pd.Series:
    """Rolling z-score of ``SPY / QQQ`` over ``window`` bars ending at t (NaN before a full window)."""
    ratio = spy.astype(float) / qqq.astype(float)
    roll = ratio.rolling(window, min_periods=window)
    sd = roll.std(ddof=1)
    return (ratio - roll.mean()) / sd.where(sd > 0)


def ratio_bias(z: pd.Series, threshold: float) -> pd.Series:
    """-1 (bearish SPY) where ``z > threshold``, +1 (bullish) where ``z < -threshold``, else 0 (NaN -> 0).

    ``threshold`` is config ``gates.ratio_z_threshold`` (SPEC: 2).
    """
    zz = z.to_numpy(float)
    return pd.Series(np.where(zz > threshold + _TOL, -1, np.where(zz < -threshold - _TOL, 1, 0)), index=z.index)


# ---------------------------------------------------------------- cost of carry
def fair_forward(spot: ArrayLike, r: ArrayLike, q: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """``F = S e^{(r - q) tau}``."""
    return np.asarray(spot, float) * np.exp((np.asarray(r, float) - np.asarray(q, float)) * np.asarray(tau, float))


def carry_basis(spot: ArrayLike, futures: ArrayLike, r: ArrayLike, q: ArrayLike, tau: ArrayLike) -> pd.DataFrame:
    """Columns ``fair_forward``, ``basis = F_market - S``, ``fair_basis = F - S``,
    ``basis_residual = F_market - F`` and ``backwardation = basis < 0``."""
    s = np.asarray(spot, float)
    fm = np.asarray(futures, float)
    f = fair_forward(s, r, q, tau)
    basis = fm - s
    index = futures.index if isinstance(futures, pd.Series) else None
    return pd.DataFrame(
        {"fair_forward": f, "basis": basis, "fair_basis": f - s, "basis_residual": fm - f,
         "backwardation": basis < -_TOL},
        index=index,
    )


# ---------------------------------------------------------------- SPY / ES divergence
def es_divergence(
    spy: ArrayLike, es: ArrayLike, ratio: float = ES_TO_SPY, threshold: float = ES_DIVERGENCE
) -> pd.DataFrame:
    """Columns ``spy_equiv = ES / ratio``, ``divergence = SPY / spy_equiv - 1`` and ``signal``
    (``sign(divergence)`` beyond ``threshold``, else 0)."""
    s = np.asarray(spy, float)
    equiv = np.asarray(es, float) / ratio
    div = s / equiv - 1.0
    signal = np.where(div > threshold + _TOL, 1, np.where(div < -threshold - _TOL, -1, 0))
    index = spy.index if isinstance(spy, pd.Series) else None
    return pd.DataFrame({"spy_equiv": equiv, "divergence": div, "signal": signal}, index=index)
