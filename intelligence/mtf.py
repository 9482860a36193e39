"""Multi-timeframe (MTF) consensus on closed bars only.

Per timeframe ``m`` (minutes) a direction signal in [−1, 1] is computed on that timeframe's
own bars (close-labelled, see ``data_factory/base.py``)::

    T = clip((close − EMA_20)/ATR_14, −1, 1)      trend: distance from the EMA in ATRs
    M = (RSI_14 − 50)/50                           momentum
    s_m = (T + M)/2

and mapped onto the base-bar timeline through closed bars only: a bar labelled ``t`` is
visible from base bars with label ``>= t`` (``searchsorted(labels, base, "right") − 1``).
The consensus is ``C = (mean_m s_m + 1)/2`` in [0, 1]; 0.5 is neutral, the entry band is
``lo <= C <= hi`` (``mtf_gate``; SPEC 0.40–0.60, config ``mtf.consensus_min/max``).

A timeframe is *missing* at a base bar (reason string, ``available`` False, ``C`` NaN) when
its frame is absent or empty, no bar of it has closed yet, its indicators are still warming
up, or it is stale: once a full ``m``-minute slot of the current session has elapsed
(session anchored at 09:30 New York), the last closed bar must be that slot's or later.
With ``require_all=False`` the consensus averages the timeframes that are present and is
missing only when none is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.indicators import atr, ema, rsi
from core.config import MTFConfig

NY_TZ = "America/New_York"
NS_PER_MINUTE = 60_000_000_000
NS_PER_DAY = 1440 * NS_PER_MINUTE
SESSION_OPEN_NS = (9 * 60 + 30) * NS_PER_MINUTE
SESSION_CLOSE_NS = 16 * 60 * NS_PER_MINUTE

_ABSENT, _NONE_YET, _WARMUP, _STALE = 1, 2, 3, 4
_REASON = {_ABSENT: "bars absent", _NONE_YET: "no closed bar yet", _WARMUP: "indicator warm-up", _STALE: "stale"}


@dataclass(frozen=True, slots=True)
class MTFParams:
    ema_period: int = 20
    rsi_period: int = 14
    atr_period: int = 14


@dataclass(frozen=True, slots=True, eq=False)
class MTFResult:
    """``consensus`` (NaN where unavailable), ``available`` (bool), ``reasons`` ("" where available),
    ``signals``: per-timeframe signal on the base timeline (NaN where that timeframe is missing)."""

    consensus: np.ndarray
    available: np.ndarray
    reasons: np.ndarray
    signals: dict[int, np.ndarray]


def local_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """New York wall-clock nanoseconds (naive) of a tz-aware index; naive input is taken as New York."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert(NY_TZ).tz_localize(None)
    return idx.as_unit("ns").asi8


def resample_close_labelled(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Local fallback resampler (production bars come from ``data_factory.bars.resample_bars``).

    Bin label ``min(open + ceil((t − open)/m)·m, 16:00)`` with open 09:30 wall clock; OHLCV =
    first/max/min/last/sum.  A partial last bin keeps a future label, so it is never visible early.
    """
    if bars.empty:
        return bars.copy()
    t = local_ns(bars.index)
    day = t - t % NS_PER_DAY
    step = minutes * NS_PER_MINUTE
    opens = day + SESSION_OPEN_NS
    labels = np.minimum(opens - ((opens - t) // step) * step, day + SESSION_CLOSE_NS)
    start = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    end = np.r_[start[1:], len(t)] - 1
    col = {k: bars[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}
    out = pd.DataFrame({
        "open": col["open"][start],
        "high": np.maximum.reduceat(col["high"], start),
        "low": np.minimum.reduceat(col["low"], start),
        "close": col["close"][end],
        "volume": np.add.reduceat(col["volume"], start),
    })
    out.index = pd.DatetimeIndex(labels[start].astype("datetime64[ns]"), name="ts").tz_localize(NY_TZ)
    return out


def timeframe_signal(bars: pd.DataFrame, params: MTFParams | None = None) -> np.ndarray:
    """``s = (clip((C − EMA)/ATR, −1, 1) + (RSI − 50)/50)/2`` on the frame's own bars (NaN in warm-up)."""
    p = params or MTFParams()
    h, lo, c = (bars[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close"))
    a = atr(h, lo, c, p.atr_period)
    with np.errstate(divide="ignore", invalid="ignore"):
        trend = np.clip(np.where(a > 0, (c - ema(c, p.ema_period)) / a, np.nan), -1.0, 1.0)
    return 0.5 * (trend + (rsi(c, p.rsi_period) - 50.0) / 50.0)


def _map_timeframe(
    frame: pd.DataFrame | None, minutes: int, base_ns: np.ndarray, params: MTFParams
) -> tuple[np.ndarray, np.ndarray]:
    """(signal on the base timeline, reason code per base bar: 0 = present)."""
    n = len(base_ns)
    if frame is None or frame.empty:
        return np.full(n, np.nan), np.full(n, _ABSENT)
    labels = local_ns(frame.index)
    pos = np.searchsorted(labels, base_ns, side="right") - 1
    seen = pos >= 0
    sig = timeframe_signal(frame, params)[np.maximum(pos, 0)]
    opens = base_ns - base_ns % NS_PER_DAY + SESSION_OPEN_NS
    step = minutes * NS_PER_MINUTE
    slot_end = opens + ((base_ns - opens) // step) * step
    stale = (base_ns - opens >= step) & (labels[np.maximum(pos, 0)] < slot_end)
    code = np.select([~seen, stale, ~np.isfinite(sig)], [_NONE_YET, _STALE, _WARMUP], default=0)
    return np.where(code == 0, sig, np.nan), code


def _reason_strings(codes: np.ndarray, timeframes: Sequence[int]) -> np.ndarray:
    """One string per base bar from the (n, k) reason codes, built once per distinct combination."""
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    texts = np.array(
        ["; ".join(f"{m}m: {_REASON[c]}" for m, c in zip(timeframes, row, strict=True) if c) for row in combos],
        dtype=object,
    )
    return texts[inverse.reshape(-1)]


def mtf_consensus(
    bars_by_tf: Mapping[int, pd.DataFrame | None],
    base_index: pd.DatetimeIndex,
    timeframes: Sequence[int] = MTFConfig().timeframes,
    params: MTFParams | None = None,
    require_all: bool = True,
) -> MTFResult:
    """``C_t = (mean_m s_m(t) + 1)/2`` over ``timeframes`` on closed bars; see the module docstring."""
    p = params or MTFParams()
    base_ns = local_ns(base_index)
    n, k = len(base_ns), len(timeframes)
    sig = np.full((n, k), np.nan)
    codes = np.zeros((n, k), dtype=np.int64)
    signals: dict[int, np.ndarray] = {}
    for j, m in enumerate(timeframes):
        sig[:, j], codes[:, j] = _map_timeframe(bars_by_tf.get(m), m, base_ns, p)
        signals[m] = sig[:, j]
    present = codes == 0
    available = present.all(axis=1) if require_all else present.any(axis=1)
    if k == 0:
        available = np.zeros(n, dtype=bool)
    counts = np.maximum(present.sum(axis=1), 1)
    mean = np.where(present, sig, 0.0).sum(axis=1) / counts
    consensus = np.where(available, (mean + 1.0) / 2.0, np.nan)
    reasons = _reason_strings(codes, timeframes) if k else np.full(n, "no timeframes configured", dtype=object)
    reasons = np.where(available, "", reasons)
    return MTFResult(consensus, available, reasons.astype(object), signals)


def mtf_gate(consensus: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Entry allowed where ``lo <= C <= hi`` (False where C is NaN)."""
    c = np.asarray(consensus, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (c >= lo) & (c <= hi)
