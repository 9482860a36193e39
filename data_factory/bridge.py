"""Seeded intraday bridge: 1-minute bars that reproduce each session's daily OHLCV exactly.

For a session with open O, high H, low L, close C, volume V and n one-minute bars:

1. **Touch times.**  The high is touched at minute ``t_H`` and the low at ``t_L``, drawn from
   the arcsine law ``t = 1 + floor(sin²(πu/2)·(n-1))`` (extremes of a Brownian path cluster
   near the open and the close); ``t_H = 0`` when H == O, ``t_H = n`` when H == C (same for L).
2. **Skeleton.**  Piecewise-linear path through (0, O), (t₁, E₁), (t₂, E₂), (n, C), where
   (t₁, E₁), (t₂, E₂) are the two extremes in time order.
3. **Noise.**  A Brownian bridge ``B`` pinned to 0 at every control point, step scale
   ``σ = mid·sqrt(σ²_P / n)`` with the Parkinson variance ``σ²_P = ln(H/L)² / (4 ln 2)``.
4. **Reflection.**  ``y = (lin + B - L)/(H - L)`` is folded into [0, 1] by the triangle wave
   ``m = y mod 2; y' = m if m <= 1 else 2 - m`` and ``x = L + y'·(H - L)`` — a Brownian path
   reflected at the day's high and low, so L <= x <= H everywhere; the control points
   (where B = 0) are then written verbatim so they are hit exactly.
5. **Bars.**  Bar k: open = x[k-1], close = x[k], high = min(max(open, close) + |z|·σ/2, H),
   low = max(min(open, close) - |z'|·σ/2, L).  Hence first open = O, last close = C,
   max high = H and min low = L exactly (bitwise).
6. **Volume.**  U-shaped profile ``w(τ) = 1 + 3·exp(-12τ) + 2·exp(-15(1-τ))`` at bar midpoints
   τ = (k - ½)/n, times log-normal noise ``exp(0.3z - 0.045)``; integer shares by
   largest-remainder rounding so the bars sum exactly to V (V rounded to whole shares first).

Randomness: each session draws from its own ``numpy`` Generator seeded by
``(seed, date.toordinal())`` with a fixed block size, so a day's bars do not depend on the
requested range.  Coarser bars (5, 15, 60 minutes) are resamplings of the 1-minute bars and
therefore reproduce the daily OHLCV as well.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.bars import resample_bars
from data_factory.base import BAR_COLUMNS, NY_TZ
from data_factory.calendar import bar_grid

MAX_SESSION_MINUTES = 390  # longest NYSE session (09:30-16:00); fixes the per-day random block size
_NOISE_ROWS = 4  # path increments, high wiggle, low wiggle, volume noise
_UNIFORMS = 2  # touch time of the high, of the low


def _validate_daily(daily: pd.DataFrame) -> None:
    missing = [c for c in BAR_COLUMNS if c not in daily.columns]
    if missing:
        raise DataError(f"daily bars lack column(s) {', '.join(missing)}; expected {', '.join(BAR_COLUMNS)}")
    o, h, lo, c = (daily[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    bad = ~((lo > 0) & (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (daily["volume"].to_numpy() >= 0))
    if bad.any():
        day = pd.Timestamp(daily.index[np.argmax(bad)]).date()
        raise DataError(f"daily bar of {day} is inconsistent (need 0 < low <= open, close <= high, volume >= 0)")


def _draw(seed: int, days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per-day random blocks: normals (D, 4, 390) and uniforms (D, 2) from Generator((seed, ordinal))."""
    normals = np.empty((len(days), _NOISE_ROWS, MAX_SESSION_MINUTES))
    uniforms = np.empty((len(days), _UNIFORMS))
    for i, day in enumerate(days):
        rng = np.random.default_rng([int(seed), day.toordinal()])
        rng.standard_normal(out=normals[i])
        uniforms[i] = rng.random(_UNIFORMS)
    return normals, uniforms


def _touch_times(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Minutes at which the high and the low are touched (arcsine law; forced to 0 / n at O / C)."""
    interior = 1 + np.floor(np.sin(0.5 * np.pi * u) ** 2 * (n[:, None] - 1)).astype(np.int64)
    t_h = np.where(h == o, 0, np.where(h == c, n, interior[:, 0]))
    t_l = np.where(lo == o, 0, np.where(lo == c, n, interior[:, 1]))
    clash = (t_h == t_l) & (h > lo)
    t_l = np.where(clash, np.where(t_h >= 2, t_h - 1, t_h + 1), t_l)
    return t_h, t_l


def _path(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    n: np.ndarray,
    t_h: np.ndarray,
    t_l: np.ndarray,
    sigma: np.ndarray,
    z: np.ndarray,
) -> np.ndarray:
    """Price points x[0..n] per day (rows padded to 390 + 1): skeleton + Brownian bridge reflected into [L, H]."""
    days = len(o)
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    t1, t2 = np.minimum(t_h, t_l)[:, None], np.maximum(t_h, t_l)[:, None]
    e1 = np.where(t_h <= t_l, h, lo)[:, None]
    e2 = np.where(t_h <= t_l, lo, h)[:, None]
    seg = (j >= t1).astype(np.int64) + (j >= t2)
    starts = np.choose(seg, [np.zeros((days, 1), np.int64), t1, t2])
    ends = np.choose(seg, [t1, t2, n[:, None]])
    v_start = np.choose(seg, [o[:, None], e1, e2])
    v_end = np.choose(seg, [e1, e2, c[:, None]])
    length = ends - starts
    frac = np.divide(j - starts, length, out=np.zeros(starts.shape), where=length > 0)
    lin = v_start + (v_end - v_start) * frac
    walk = np.concatenate([np.zeros((days, 1)), np.cumsum(z * sigma[:, None], axis=1)], axis=1)
    w_start = np.take_along_axis(walk, starts, axis=1)
    w_end = np.take_along_axis(walk, np.minimum(ends, MAX_SESSION_MINUTES), axis=1)
    bridge = walk - w_start - frac * (w_end - w_start)
    span = (h - lo)[:, None]
    unit = np.mod(np.divide(lin + bridge - lo[:, None], span, out=np.zeros(lin.shape), where=span > 0), 2.0)
    x = np.clip(lo[:, None] + np.where(unit > 1.0, 2.0 - unit, unit) * span, lo[:, None], h[:, None])
    rows = np.arange(days)
    x[:, 0] = o
    x[rows, t_h] = h
    x[rows, t_l] = lo
    x[rows, n] = c
    return x


def _volumes(v: np.ndarray, n: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer volume per bar (rows padded to 390), U-shaped, summing exactly to ``v`` per row."""
    k = np.arange(MAX_SESSION_MINUTES)[None, :]
    valid = k < n[:, None]
    tau = (k + 0.5) / n[:, None]
    weight = (1.0 + 3.0 * np.exp(-12.0 * tau) + 2.0 * np.exp(-15.0 * (1.0 - tau))) * np.exp(0.3 * z - 0.045)
    weight = np.where(valid, weight, 0.0)
    quota = v[:, None] * weight / weight.sum(axis=1, keepdims=True)
    base = np.floor(quota)
    remainder = np.where(valid, quota - base, -1.0)
    short = np.clip(v - base.sum(axis=1), 0, n - 1).astype(np.int64)
    order = np.argsort(-remainder, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(k, order.shape), axis=1)
    vol = base + (rank < short[:, None])
    rows = np.arange(len(v))
    vol[rows, np.argmax(vol, axis=1)] += v - vol.sum(axis=1)  # float-rounding guard; zero in practice
    return vol


def minute_bars(daily: pd.DataFrame, seed: int) -> pd.DataFrame:
    """1-minute close-labelled bars (tz New York) whose sessions reproduce ``daily``'s OHLCV exactly."""
    _validate_daily(daily)
    days = pd.DatetimeIndex(daily.index).normalize()
    if days.empty:
        return pd.DataFrame(
            columns=list(BAR_COLUMNS), dtype=np.float64, index=pd.DatetimeIndex([], tz=NY_TZ, name="ts")
        )
    labels, n = bar_grid(days, 1)
    if n.max() > MAX_SESSION_MINUTES:
        raise DataError(f"a session longer than {MAX_SESSION_MINUTES} minutes cannot be bridged")
    o, h, lo, c = (daily[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    v = np.rint(daily["volume"].to_numpy(dtype=np.float64))
    normals, uniforms = _draw(seed, days)
    t_h, t_l = _touch_times(o, h, lo, c, n, uniforms)
    mid = 0.5 * (h + lo)
    sigma = mid * np.log(h / lo) / (2.0 * np.sqrt(np.log(2.0))) / np.sqrt(n)
    x = _path(o, h, lo, c, n, t_h, t_l, sigma, normals[:, 0])
    bar_open, bar_close = x[:, :-1], x[:, 1:]
    wiggle = 0.5 * sigma[:, None]
    high = np.minimum(np.maximum(bar_open, bar_close) + np.abs(normals[:, 1]) * wiggle, h[:, None])
    low = np.maximum(np.minimum(bar_open, bar_close) - np.abs(normals[:, 2]) * wiggle, lo[:, None])
    volume = _volumes(v, n, normals[:, 3])
    valid = np.arange(MAX_SESSION_MINUTES)[None, :] < n[:, None]
    index = pd.DatetimeIndex(labels.astype("datetime64[ns]"), name="ts").tz_localize("UTC").tz_convert(NY_TZ)
    data = {
        "open": bar_open[valid],
        "high": high[valid],
        "low": low[valid],
        "close": bar_close[valid],
        "volume": volume[valid],
    }
    return pd.DataFrame(data, index=index, columns=list(BAR_COLUMNS))


def bridge_intraday(daily: pd.DataFrame, seed: int, minutes: int = 5) -> pd.DataFrame:
    """Close-labelled ``minutes`` bars for every session of ``daily`` (resampled from the 1-minute bridge)."""
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    bars = minute_bars(daily, seed)
    return bars if minutes == 1 else resample_bars(bars, minutes)
