"""Seeded intraday bridge: one joint path of spot and VIX per session, pinned to the day's real
OHLC (spot) and real close (VIX), and otherwise a random walk's.

For a session with open O, high H, low L, close C, volume V and n one-minute bars (log prices
``o, h, l, c``):

1. **Variance.**  The session's log variance blends what was known before it with its own
   range: ``σ_d² = ½ σ²_prior + ½ σ²_P`` with the Parkinson variance
   ``σ²_P = ln(H/L)² / (4 ln 2)`` of the day and ``σ²_prior`` the mean Parkinson variance of the
   ``PRIOR_SESSIONS = 20`` sessions before it (``prior_variance``; a range with no history uses
   its own).  A path conditioned on its range must be drawn with the volatility that produced
   it, not with the one its range alone suggests: a day's range is a noisy read of σ, and the
   range-only σ makes a wide-range day wiggle too much and a narrow one trend too much.  Per
   minute ``σ_m = σ_d / sqrt(n)``.
2. **Exact conditional walk.**  The log price is a random walk on ``LATTICE_LEVELS = 128``
   equally spaced levels from ``l* = l + β σ_m`` to ``h* = h − β σ_m`` (``β = 0.5826``, the
   Broadie–Glasserman–Kou discrete-monitoring shift: a walk observed once a minute peaks about
   ``β σ_m`` below the continuous high) with Gaussian steps of standard deviation ``σ_m``,
   started at the level of the real open and drawn **exactly from its law conditioned on**
   staying within [l*, h*], visiting both l* and h*, and ending at the level of the real close.
   The conditioning is a Doob h-transform: a backward pass computes, for every minute, level
   and "still has to visit the top / the bottom" flag, the probability of meeting the
   conditions from there; the forward pass draws each step from the Gaussian step times that
   probability (inverse CDF of the day's normals).  No time of the high or low is drawn and no
   level is remapped, so nothing about the close reaches the morning beyond what a random walk
   with those extremes carries (``scripts/market_model_stats.py``).
3. **Exactness.**  Minute 0 is written as O and minute n as C (bitwise); all minutes lie in
   [L, H].
4. **Bars.**  Bar k: open = x[k-1], close = x[k], high = min(max(open, close) + |z|·σ/2, H),
   low = max(min(open, close) - |z'|·σ/2, L) (σ the per-minute price scale); the bar with the
   session's highest close has high = H and the one with the lowest close has low = L (the
   continuous extreme lies between the minute closes).  Hence first open = O, last close = C,
   max high = H and min low = L exactly.
5. **Volume.**  U-shaped profile ``w(τ) = 1 + 3·exp(-12τ) + 2·exp(-15(1-τ))`` at bar midpoints
   τ = (k - ½)/n, times log-normal noise ``exp(0.3z - 0.045)``; integer shares by
   largest-remainder rounding so the bars sum exactly to V (V rounded to whole shares first).
6. **VIX.**  ``ln VIX(j) = ln VIX_prev + β·(s(j) − ln P) + η(j)`` with ``s`` the spot path, P
   the previous close, ``β = −8.0 · min(1, 25 / VIX_prev)`` (log-VIX elasticity to the index;
   −8 is the 2014–2018 daily regression slope, R² 0.67; at high levels VIX moves less in
   percent, so the elasticity falls with the level) and ``η`` a Brownian bridge that starts at 0 at the previous
   close, runs ``n/4`` minutes of overnight variance before the open, and ends at the residual
   that makes minute n equal the real VIX close.  Its step is ``|β|·σ̂·sqrt(1/ρ² − 1)`` with
   ``σ̂`` the spot path's own realised minute volatility that day and ``ρ = −0.80`` (the
   2014–2018 daily correlation is −0.817), so 5-minute log changes of VIX and spot correlate
   about like the daily ones do (−0.76 pooled over 1999–2018; the pull to the real close and the
   band below weaken it a little), not deterministically.  The path stays within
   [min(prev, close) / 1.35, max(prev, close) × 1.35] and [5, 150] (no made-up spike far beyond
   both closes), and its last minute is the real close exactly.

Randomness: each session draws from its own ``numpy`` Generator seeded by
``(seed, date.toordinal())`` with a fixed block size, so a day's path does not depend on the
requested range.  Coarser bars (5, 15, 60 minutes) are resamplings of the 1-minute bars and
therefore reproduce the daily OHLCV as well; the VIX of a bar is the path's value at the
bar's close.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import pandas as pd
from scipy.special import ndtr

from core.dto import DataError
from data_factory.bars import resample_bars
from data_factory.base import BAR_COLUMNS, NY_TZ
from data_factory.calendar import bar_grid
from data_factory.clock import GAP_UNITS

MAX_SESSION_MINUTES = 390  # longest NYSE session (09:30-16:00); fixes the per-day random block size
_NOISE_ROWS = 5  # path increments, high wiggle, low wiggle, volume noise, VIX residual increments
_CHUNK_DAYS = 32  # sessions per backward pass (memory: 32 x 391 x 4 x 128 doubles = 51 MB)
LATTICE_LEVELS = 128  # price levels between the shifted low and high
PRIOR_SESSIONS = 20  # sessions whose mean Parkinson variance is the prior (module doc, step 1)
PRIOR_WEIGHT = 0.5  # weight of the prior in the session's variance
MONITORING_SHIFT = 0.5826  # Broadie-Glasserman-Kou: -zeta(1/2)/sqrt(2 pi)
_PATH_CACHE = 4  # session_paths results kept (keyed by seed and a digest of the inputs)
_PATHS: OrderedDict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
VIX_BETA = -8.0  # d ln VIX / d ln S at VIX <= VIX_BETA_LEVEL
VIX_BETA_LEVEL = 25.0  # above it the elasticity is VIX_BETA * 25 / VIX (a VIX of 75 moves less in % than one of 15)
VIX_BAND = 1.35  # the path stays within [min(prev, close) / 1.35, max(prev, close) x 1.35]
VIX_RHO = -0.80  # correlation of VIX and spot minute log changes (2014-2018 daily: -0.817)
VIX_OVERNIGHT = GAP_UNITS  # overnight residual variance, in sessions: the option clock's gap share
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


def parkinson_variance(daily: pd.DataFrame) -> np.ndarray:
    """Per-session Parkinson log variance ``ln(H/L)² / (4 ln 2)``."""
    return np.log(daily["high"].to_numpy(np.float64) / daily["low"].to_numpy(np.float64)) ** 2 / (4.0 * np.log(2.0))


def prior_variance(daily: pd.DataFrame) -> pd.Series:
    """Mean Parkinson variance of the ``PRIOR_SESSIONS`` sessions before each one, by date (NaN on the
    first session of ``daily``): what was known of the volatility level before the day opened."""
    park = pd.Series(parkinson_variance(daily), index=pd.DatetimeIndex(daily.index).normalize())
    return park.rolling(PRIOR_SESSIONS, min_periods=1).mean().shift(1)


def _session_variance(daily: pd.DataFrame, prior: pd.Series | None) -> np.ndarray:
    """Step 1 of the module doc; ``prior`` (by date) defaults to ``prior_variance(daily)``."""
    park = parkinson_variance(daily)
    days = pd.DatetimeIndex(daily.index).normalize()
    known = (prior_variance(daily) if prior is None else prior).reindex(days).to_numpy(np.float64)
    known = np.where(np.isfinite(known) & (known > 0), known, park)
    return PRIOR_WEIGHT * known + (1.0 - PRIOR_WEIGHT) * park


def _kernels(step_levels: np.ndarray, levels: int) -> np.ndarray:
    """Gaussian step weights between lattice levels, one (K, K) matrix per session (unnormalised:
    the constant cancels in every conditional draw)."""
    d = np.arange(levels, dtype=np.float64)
    return np.exp(-0.5 * (d[:, None] - d[None, :]) ** 2 / step_levels[:, None, None] ** 2)


def conditioned_walk(start: np.ndarray, end: np.ndarray, n: int, u: np.ndarray, step_levels: np.ndarray,
                     levels: int = LATTICE_LEVELS) -> np.ndarray:
    """Integer level paths (D, n + 1) on 0..K-1 from ``start`` to ``end``, drawn exactly from a Gaussian
    random walk (step sd ``step_levels``, in levels) conditioned on staying in [0, K-1], visiting both 0
    and K-1 and ending at ``end``; ``u`` (D, n) are the uniforms of the forward draws.

    Flags: 0 = nothing left to visit, 1 = the top, 2 = the bottom, 3 = both.  ``g[t, f, y]`` is the
    probability (up to a per-session constant) of meeting the conditions from level y at minute t
    with flags f still open *before* y is counted."""
    kern = _kernels(step_levels, levels)
    d, top = len(start), levels - 1
    g = np.empty((d, n + 1, 4, levels))
    h = np.zeros((d, 4, levels))
    h[np.arange(d), 0, end] = 1.0
    for t in range(n, 0, -1):
        gt = g[:, t]
        gt[...] = h
        gt[:, 1, top], gt[:, 3, top] = h[:, 0, top], h[:, 2, top]  # reaching the top clears its flag
        gt[:, 2, 0], gt[:, 3, 0] = h[:, 0, 0], h[:, 1, 0]
        h = gt @ kern
        h /= np.maximum(h.max(axis=(1, 2), keepdims=True), np.finfo(np.float64).tiny)
    x = np.empty((d, n + 1), dtype=np.int64)
    x[:, 0] = start
    flags = (start != top).astype(np.int64) + 2 * (start != 0)
    rows = np.arange(d)
    for t in range(n):
        cum = np.cumsum(kern[rows, x[:, t]] * g[rows, t + 1, flags], axis=1)
        y = np.minimum((cum < (u[:, t] * cum[:, -1])[:, None]).sum(axis=1), top)
        x[:, t + 1] = y
        flags = np.where(y == top, flags & 2, flags)
        flags = np.where(y == 0, flags & 1, flags)
    return x


def conditioned_log_paths(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: np.ndarray,
                          sigma_m: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Log price at minutes 0..n per day (rows padded to 391 with the close): step 2 of the module doc."""
    lh, ll = np.log(h), np.log(lo)
    shift = np.minimum(MONITORING_SHIFT * sigma_m, 0.25 * (lh - ll))
    top, bottom = lh - shift, ll + shift
    width = (top - bottom) / (LATTICE_LEVELS - 1)
    safe = np.where(width > 0, width, 1.0)

    def level(v: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((np.log(v) - bottom) / safe), 0, LATTICE_LEVELS - 1).astype(np.int64)

    start, end = level(o), level(c)
    u = ndtr(z)
    out = np.repeat(np.log(c)[:, None], MAX_SESSION_MINUTES + 1, axis=1)
    moving = np.flatnonzero(width > 0)
    for m in np.unique(n[moving]):
        same = moving[n[moving] == m]
        for s in range(0, len(same), _CHUNK_DAYS):
            k = same[s: s + _CHUNK_DAYS]
            walk = conditioned_walk(start[k], end[k], int(m), u[k, :m], sigma_m[k] / safe[k])
            out[k, : m + 1] = bottom[k, None] + walk * width[k, None]
    flat = width <= 0  # H == L: nothing moves
    out[flat] = np.log(o[flat])[:, None]
    return out


def session_paths(daily: pd.DataFrame, seed: int, prior: pd.Series | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spot at minutes 0..n of every session (price, rows padded to 391), bar counts n, per-minute log
    step, the normals block and the bar labels (UTC ns).  ``prior``: the variance known before each
    session, by date (``prior_variance`` of a longer history); default: from ``daily`` itself."""
    days = pd.DatetimeIndex(daily.index).normalize()
    o, h, lo, c = (daily[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    variance = _session_variance(daily, prior)
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in (days.asi8, o, h, lo, c, variance)))
    key = (int(seed), digest.hexdigest())
    hit = _PATHS.get(key)
    if hit is not None:  # the bars and the VIX of one range share one path: draw it once
        _PATHS.move_to_end(key)
        return hit
    labels, n = bar_grid(days, 1)
    if n.max() > MAX_SESSION_MINUTES:
        raise DataError(f"a session longer than {MAX_SESSION_MINUTES} minutes cannot be bridged")
    normals = _draw(seed, days)
    sigma_m = np.sqrt(variance / n)
    x = np.clip(np.exp(conditioned_log_paths(o, h, lo, c, n, sigma_m, normals[:, 0, :-1])), lo[:, None], h[:, None])
    rows = np.arange(len(o))
    x[:, 0] = o
    x[rows, n] = c
    out = (x, n, sigma_m, normals, labels)
    for arr in out:
        arr.flags.writeable = False
    _PATHS[key] = out
    while len(_PATHS) > _PATH_CACHE:
        _PATHS.popitem(last=False)
    return out


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


def minute_bars(daily: pd.DataFrame, seed: int, prior: pd.Series | None = None) -> pd.DataFrame:
    """1-minute close-labelled bars (tz New York) whose sessions reproduce ``daily``'s OHLCV exactly
    (``prior``: see ``session_paths``)."""
    _validate_daily(daily)
    if daily.empty:
        return _empty_bars()
    x, n, sigma_m, normals, labels = session_paths(daily, seed, prior)
    h, lo = daily["high"].to_numpy(np.float64), daily["low"].to_numpy(np.float64)
    v = np.rint(daily["volume"].to_numpy(dtype=np.float64))
    bar_open, bar_close = x[:, :-1], x[:, 1:]
    wiggle = 0.5 * sigma_m[:, None] * bar_close
    high = np.minimum(np.maximum(bar_open, bar_close) + np.abs(normals[:, 1, :-1]) * wiggle, h[:, None])
    low = np.maximum(np.minimum(bar_open, bar_close) - np.abs(normals[:, 2, :-1]) * wiggle, lo[:, None])
    valid = np.arange(MAX_SESSION_MINUTES)[None, :] < n[:, None]
    rows = np.arange(len(n))
    high[rows, np.argmax(np.where(valid, bar_close, -np.inf), axis=1)] = h  # the extremes lie between closes
    low[rows, np.argmin(np.where(valid, bar_close, np.inf), axis=1)] = lo
    volume = _volumes(v, n, normals[:, 3, :-1])
    data = {"open": bar_open[valid], "high": high[valid], "low": low[valid], "close": bar_close[valid],
            "volume": volume[valid]}
    return pd.DataFrame(data, index=_index(labels), columns=list(BAR_COLUMNS))


def minute_vix(daily: pd.DataFrame, vix_close: np.ndarray, seed: int, prior: pd.Series | None = None) -> pd.Series:
    """1-minute VIX at each bar close, jointly with ``minute_bars(daily, seed)`` (module doc, step 6).

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
    x, n, _, normals, labels = session_paths(daily, seed, prior)
    c = daily["close"].to_numpy(np.float64)
    prev_close = np.r_[daily["open"].to_numpy(np.float64)[:1], c[:-1]]
    v_prev = np.log(np.r_[vix_close[:1], vix_close[:-1]])
    v_close = np.log(vix_close)
    s = np.log(x)
    beta = VIX_BETA * np.minimum(1.0, VIX_BETA_LEVEL / np.exp(v_prev))  # log elasticity falls at high VIX
    lever = beta[:, None] * (s - np.log(prev_close)[:, None])
    residual = v_close - v_prev - lever[np.arange(len(n)), n]
    # the residual's step scales with the spot path's own realised minute variance (a range-conditioned
    # walk moves a little less than sigma_m), so 5-minute changes correlate at about VIX_RHO
    j = np.arange(MAX_SESSION_MINUTES + 1)[None, :]
    moves = np.where((j[:, 1:] <= n[:, None]), np.diff(s, axis=1), 0.0)
    realised = np.sqrt((moves**2).sum(axis=1) / n)
    step = np.abs(beta) * realised * np.sqrt(1.0 / VIX_RHO**2 - 1.0)
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


def bridge_intraday(daily: pd.DataFrame, seed: int, minutes: int = 5, prior: pd.Series | None = None
                    ) -> pd.DataFrame:
    """Close-labelled ``minutes`` bars for every session of ``daily`` (resampled from the 1-minute bridge)."""
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    bars = minute_bars(daily, seed, prior)
    return bars if minutes == 1 else resample_bars(bars, minutes)


def bridge_vix(daily: pd.DataFrame, vix_close: np.ndarray, seed: int, minutes: int = 5,
               prior: pd.Series | None = None) -> pd.Series:
    """VIX at the close of each ``minutes`` bar of ``bridge_intraday(daily, seed, minutes)``."""
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    path = minute_vix(daily, vix_close, seed, prior)
    if minutes == 1 or path.empty:
        return path
    labels, _ = bar_grid(pd.DatetimeIndex(daily.index).normalize(), minutes)
    return path.reindex(_index(labels))
