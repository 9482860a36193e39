"""Seeded intraday bridge: one joint path of spot and VIX per session, pinned to the day's real
OHLC (spot) and real close (VIX), and otherwise a random walk's.

For a session with open O, high H, low L, close C, volume V and n one-minute bars (log prices
``o, h, l, c``):

1. **Variance.**  The session's log variance is ``σ_d² = K_VAR · σ²_P`` with the Parkinson
   variance ``σ²_P = ln(H/L)² / (4 ln 2)`` and ``K_VAR = 1``; per minute ``σ_m = σ_d / sqrt(n)``.
   (Range estimators understate open-to-close variance by about a third on this file, but the
   range is pinned below anyway; ``scripts/market_model_stats.py`` shows 1.0 leaks least.)
2. **Raw walk.**  A Brownian bridge in log price from ``o`` (minute 0) to ``c`` (minute n) with
   step ``σ_m`` — a random walk pinned to the real open and close, nothing else known.
3. **Range.**  The walk's maximum ``M`` and minimum ``m`` are moved onto the real ``h`` and
   ``l`` by a monotone, piecewise-linear map of price levels that is the identity between
   ``min(o, c)`` and ``max(o, c)``: levels above ``max(o, c)`` are scaled by
   ``(h − max(o, c)) / (M − max(o, c))``, levels below ``min(o, c)`` by
   ``(min(o, c) − l) / (min(o, c) − m)``.  Times of the extremes are the walk's own (no
   separately drawn touch times, no skeleton through the extremes).  When the walk never leaves
   the band on a side the range needs, a piecewise-linear correction through (0, 0),
   (t_high, h − p(t_high)), (t_low, l − p(t_low)), (n, 0) at the walk's interior extremes lifts
   (lowers) it there; it is zero at the open and the close and never pushes a point past H or L.
4. **Exactness.**  Minute 0 is written as O, minute n as C, the arg-max as H and the arg-min as
   L (bitwise), and everything is clipped to [L, H].
5. **Bars.**  Bar k: open = x[k-1], close = x[k], high = min(max(open, close) + |z|·σ/2, H),
   low = max(min(open, close) - |z'|·σ/2, L) (σ the per-minute price scale).  Hence first
   open = O, last close = C, max high = H and min low = L exactly.
6. **Volume.**  U-shaped profile ``w(τ) = 1 + 3·exp(-12τ) + 2·exp(-15(1-τ))`` at bar midpoints
   τ = (k - ½)/n, times log-normal noise ``exp(0.3z - 0.045)``; integer shares by
   largest-remainder rounding so the bars sum exactly to V (V rounded to whole shares first).
7. **VIX.**  ``ln VIX(j) = ln VIX_prev + β·(s(j) − ln P) + η(j)`` with ``s`` the spot path, P
   the previous close, ``β = −8.0 · min(1, 25 / VIX_prev)`` (log-VIX elasticity to the index;
   −8 is the 2014–2018 daily regression slope, R² 0.67; at high levels VIX moves less in
   percent, so the elasticity falls with the level) and ``η`` a Brownian bridge that starts at 0 at the previous
   close, runs ``n/4`` minutes of overnight variance before the open, and ends at the residual
   that makes minute n equal the real VIX close.  Its step is
   ``|β|·σ_m·sqrt(1/ρ² − 1)`` with ``ρ = −0.72``, so 5-minute log changes of VIX and spot
   correlate like the daily ones do (not deterministically).  The path stays within
   [min(prev, close) / 1.35, max(prev, close) × 1.35] and [5, 150] (no made-up spike far beyond
   both closes), and its last minute is the real close exactly.

Randomness: each session draws from its own ``numpy`` Generator seeded by
``(seed, date.toordinal())`` with a fixed block size, so a day's path does not depend on the
requested range.  Coarser bars (5, 15, 60 minutes) are resamplings of the 1-minute bars and
therefore reproduce the daily OHLCV as well; the VIX of a bar is the path's value at the
bar's close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.bars import resample_bars
from data_factory.base import BAR_COLUMNS, NY_TZ
from data_factory.calendar import bar_grid

MAX_SESSION_MINUTES = 390  # longest NYSE session (09:30-16:00); fixes the per-day random block size
_NOISE_ROWS = 5  # path increments, high wiggle, low wiggle, volume noise, VIX residual increments
_CHUNK_DAYS = 128
K_VAR = 1.0  # session variance / Parkinson variance (see the module doc)
VIX_BETA = -8.0  # d ln VIX / d ln S at VIX <= VIX_BETA_LEVEL
VIX_BETA_LEVEL = 25.0  # above it the elasticity is VIX_BETA * 25 / VIX (a VIX of 75 moves less in % than one of 15)
VIX_BAND = 1.35  # the path stays within [min(prev, close) / 1.35, max(prev, close) x 1.35]
VIX_RHO = -0.72  # correlation of VIX and spot log changes
VIX_OVERNIGHT = 0.25  # overnight residual variance, in sessions
VIX_BOUNDS = (5.0, 150.0)


def _validate_daily(daily: pd.DataFrame) -> None:
    missing = [c for c in BAR_COLUMNS if c not in daily.columns]
    if missing:
        raise DataError(f"daily bars lack column(s) {', '.join(missing)}; expected {', '.join(BAR_COLUMNS)}")
    o, h, lo, c = (daily[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    bad = ~((lo > 0) & (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (daily["volume"].to_numpy() >= 0))
    if bad.any():
        day = pd.Timestamp(daily.index[np.argmax(bad)]).date()
        raise DataError(f"daily bar of {day} is inconsistent (need 0 < low <= open, close <= high, volume >= 0)")


def _draw(seed: int, days: pd.DatetimeIndex) -> np.ndarray:
    """Per-day random blocks: normals (D, 5, 391) from Generator((seed, ordinal))."""
    normals = np.empty((len(days), _NOISE_ROWS, MAX_SESSION_MINUTES + 1))
    for i, day in enumerate(days):
        np.random.default_rng([int(seed), day.toordinal()]).standard_normal(out=normals[i])
    return normals


def _bridge(start: np.ndarray, end: np.ndarray, n: np.ndarray, step: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Brownian bridges from ``start`` (column 0) to ``end`` (column n), step ``step``; rows padded to 391."""
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    walk = np.concatenate([np.zeros((len(start), 1)), np.cumsum(z * step[:, None], axis=1)], axis=1)
    frac = np.minimum(j / n[:, None], 1.0)
    w_end = np.take_along_axis(walk, n[:, None], axis=1)
    return start[:, None] + walk - frac * w_end + frac * (end - start)[:, None]


def _interior_extreme(p: np.ndarray, n: np.ndarray, sign: float) -> np.ndarray:
    """Minute of the highest (sign +1) or lowest (-1) point strictly inside each session."""
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    inside = (j > 0) & (j < n[:, None])
    return np.argmax(np.where(inside, sign * p, -np.inf), axis=1)


def _hat(n: np.ndarray, t1: np.ndarray, v1: np.ndarray, t2: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """Piecewise-linear function through (0, 0), (t1, v1), (t2, v2), (n, 0) with t1 < t2 (rows padded)."""
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :].astype(np.float64)
    t1, t2, nn = t1[:, None].astype(np.float64), t2[:, None].astype(np.float64), n[:, None].astype(np.float64)
    v1, v2 = v1[:, None], v2[:, None]
    first = v1 * j / np.maximum(t1, 1.0)
    middle = v1 + (v2 - v1) * (j - t1) / np.maximum(t2 - t1, 1.0)
    last = v2 * (nn - j) / np.maximum(nn - t2, 1.0)
    return np.where(j <= t1, first, np.where(j <= t2, middle, np.where(j <= nn, last, 0.0)))


def _log_path(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: np.ndarray, sigma_m: np.ndarray,
              z: np.ndarray) -> np.ndarray:
    """Log price at minutes 0..n per day (rows padded to 391, padding = close): steps 2–3 of the module doc."""
    lo_, hi_ = np.log(lo), np.log(h)
    a, b = np.minimum(np.log(o), np.log(c)), np.maximum(np.log(o), np.log(c))
    p = _bridge(np.log(o), np.log(c), n, sigma_m, z)
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    p = np.where(j <= n[:, None], p, np.log(c)[:, None])
    rows = np.arange(len(o))
    # (a) excursions beyond the band [a, b] are scaled so that the walk's extremes land on the day's
    top, bottom = p.max(axis=1), p.min(axis=1)
    up = np.divide(hi_ - b, top - b, out=np.ones_like(b), where=top > b)
    dn = np.divide(a - lo_, a - bottom, out=np.ones_like(a), where=bottom < a)
    p = np.where(p > b[:, None], b[:, None] + (p - b[:, None]) * up[:, None], p)
    p = np.where(p < a[:, None], a[:, None] - (a[:, None] - p) * dn[:, None], p)
    # (b) one that falls short is lifted (lowered) at its interior extreme by a piecewise-linear
    # correction that is zero at the open and the close: no spike, only a slight drift
    t_hi, t_lo = _interior_extreme(p, n, 1.0), _interior_extreme(p, n, -1.0)
    d_hi = np.maximum(hi_ - p[rows, t_hi], 0.0)
    d_lo = np.minimum(lo_ - p[rows, t_lo], 0.0)
    first = t_hi <= t_lo
    corr = _hat(n, np.where(first, t_hi, t_lo), np.where(first, d_hi, d_lo),
                np.where(first, t_lo, t_hi), np.where(first, d_lo, d_hi))
    return p + corr


def session_paths(daily: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Spot at minutes 0..n of every session (price, rows padded to 391), bar counts n, per-minute log
    step, the normals block and the bar labels (UTC ns)."""
    days = pd.DatetimeIndex(daily.index).normalize()
    labels, n = bar_grid(days, 1)
    if n.max() > MAX_SESSION_MINUTES:
        raise DataError(f"a session longer than {MAX_SESSION_MINUTES} minutes cannot be bridged")
    o, h, lo, c = (daily[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    normals = _draw(seed, days)
    sigma_m = np.sqrt(K_VAR) * np.log(h / lo) / (2.0 * np.sqrt(np.log(2.0))) / np.sqrt(n)
    x = np.empty((len(o), MAX_SESSION_MINUTES + 1))
    for s in range(0, len(o), _CHUNK_DAYS):
        k = slice(s, s + _CHUNK_DAYS)
        x[k] = np.exp(_log_path(o[k], h[k], lo[k], c[k], n[k], sigma_m[k], normals[k, 0, :-1]))
    rows = np.arange(len(o))
    x = np.clip(x, lo[:, None], h[:, None])
    x[rows, np.argmax(x[:, : MAX_SESSION_MINUTES + 1] * (np.arange(MAX_SESSION_MINUTES + 1)[None, :] <= n[:, None]),
                      axis=1)] = h
    masked_low = np.where(np.arange(MAX_SESSION_MINUTES + 1)[None, :] <= n[:, None], x, np.inf)
    x[rows, np.argmin(masked_low, axis=1)] = lo
    x[:, 0] = o
    x[rows, n] = c
    return x, n, sigma_m, normals, labels


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


def _index(labels: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(labels.astype("datetime64[ns]"), name="ts").tz_localize("UTC").tz_convert(NY_TZ)


def _empty_bars() -> pd.DataFrame:
    return pd.DataFrame(columns=list(BAR_COLUMNS), dtype=np.float64, index=pd.DatetimeIndex([], tz=NY_TZ, name="ts"))


def minute_bars(daily: pd.DataFrame, seed: int) -> pd.DataFrame:
    """1-minute close-labelled bars (tz New York) whose sessions reproduce ``daily``'s OHLCV exactly."""
    _validate_daily(daily)
    if daily.empty:
        return _empty_bars()
    x, n, sigma_m, normals, labels = session_paths(daily, seed)
    h, lo = daily["high"].to_numpy(np.float64), daily["low"].to_numpy(np.float64)
    v = np.rint(daily["volume"].to_numpy(dtype=np.float64))
    bar_open, bar_close = x[:, :-1], x[:, 1:]
    wiggle = 0.5 * sigma_m[:, None] * bar_close
    high = np.minimum(np.maximum(bar_open, bar_close) + np.abs(normals[:, 1, :-1]) * wiggle, h[:, None])
    low = np.maximum(np.minimum(bar_open, bar_close) - np.abs(normals[:, 2, :-1]) * wiggle, lo[:, None])
    volume = _volumes(v, n, normals[:, 3, :-1])
    valid = np.arange(MAX_SESSION_MINUTES)[None, :] < n[:, None]
    data = {"open": bar_open[valid], "high": high[valid], "low": low[valid], "close": bar_close[valid],
            "volume": volume[valid]}
    return pd.DataFrame(data, index=_index(labels), columns=list(BAR_COLUMNS))


def minute_vix(daily: pd.DataFrame, vix_close: np.ndarray, seed: int) -> pd.Series:
    """1-minute VIX at each bar close, jointly with ``minute_bars(daily, seed)`` (module doc, step 7).

    ``vix_close[d]`` is the day's VIX close (real or the causal proxy); the path starts from the
    previous day's value (the first day starts from its own close, with no drift)."""
    _validate_daily(daily)
    vix_close = np.asarray(vix_close, dtype=np.float64)
    if len(vix_close) != len(daily):
        raise DataError(f"VIX covers {len(vix_close)} days, the bars {len(daily)}; align them by date first")
    if daily.empty:
        return pd.Series([], dtype=np.float64, index=pd.DatetimeIndex([], tz=NY_TZ, name="ts"), name="vix")
    if not np.all(np.isfinite(vix_close) & (vix_close > 0)):
        raise DataError("VIX has missing or non-positive closes; fill them before bridging")
    x, n, sigma_m, normals, labels = session_paths(daily, seed)
    c = daily["close"].to_numpy(np.float64)
    prev_close = np.r_[daily["open"].to_numpy(np.float64)[:1], c[:-1]]
    v_prev = np.log(np.r_[vix_close[:1], vix_close[:-1]])
    v_close = np.log(vix_close)
    s = np.log(x)
    beta = VIX_BETA * np.minimum(1.0, VIX_BETA_LEVEL / np.exp(v_prev))  # log elasticity falls at high VIX
    lever = beta[:, None] * (s - np.log(prev_close)[:, None])
    residual = v_close - v_prev - lever[np.arange(len(n)), n]
    step = np.abs(beta) * sigma_m * np.sqrt(1.0 / VIX_RHO**2 - 1.0)
    # eta: 0 at the previous close, an overnight step of variance VIX_OVERNIGHT * n * step^2, then the
    # session's minutes; pinned at ``residual`` at minute n
    overnight = np.sqrt(VIX_OVERNIGHT * n) * step * normals[:, 4, -1]
    walk = np.concatenate([overnight[:, None], overnight[:, None] + np.cumsum(normals[:, 4, :-1] * step[:, None],
                                                                                  axis=1)], axis=1)
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    total = (VIX_OVERNIGHT * n)[:, None] + np.minimum(j, n[:, None])  # elapsed variance time since the close
    frac = total / (VIX_OVERNIGHT * n + n)[:, None]
    w_end = np.take_along_axis(walk, n[:, None], axis=1)
    eta = walk - frac * w_end + frac * residual[:, None]
    lo = np.minimum(v_prev, v_close)[:, None] - np.log(VIX_BAND)
    hi = np.maximum(v_prev, v_close)[:, None] + np.log(VIX_BAND)
    path = np.clip(np.exp(np.clip(v_prev[:, None] + lever + eta, lo, hi)), *VIX_BOUNDS)
    path[np.arange(len(n)), n] = vix_close
    valid = (j >= 1) & (j <= n[:, None])
    return pd.Series(path[valid], index=_index(labels), name="vix")


def bridge_intraday(daily: pd.DataFrame, seed: int, minutes: int = 5) -> pd.DataFrame:
    """Close-labelled ``minutes`` bars for every session of ``daily`` (resampled from the 1-minute bridge)."""
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    bars = minute_bars(daily, seed)
    return bars if minutes == 1 else resample_bars(bars, minutes)


def bridge_vix(daily: pd.DataFrame, vix_close: np.ndarray, seed: int, minutes: int = 5) -> pd.Series:
    """VIX at the close of each ``minutes`` bar of ``bridge_intraday(daily, seed, minutes)``."""
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    path = minute_vix(daily, vix_close, seed)
    if minutes == 1 or path.empty:
        return path
    labels, _ = bar_grid(pd.DatetimeIndex(daily.index).normalize(), minutes)
    return path.reindex(_index(labels))
