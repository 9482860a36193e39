"""Technical indicators as plain functions over numpy arrays, bit-for-bit in the spirit of TA-Lib.

Every function takes 1-d float arrays (open/high/low/close/volume of one bar series, oldest
first), returns arrays of the same length, and puts ``NaN`` on the warm-up bars, i.e.
exactly where TA-Lib (0.x, default "classic" compatibility, no unstable period) has no
output.  Wilder recurrences ``y_t = y_{t-1}·(n-1)/n + x_t/n`` run through
``scipy.signal.lfilter`` (a sequential C loop), so a value at bar ``t`` depends only on bars
``<= t`` and the prefix of a series gives the prefix of the result (causality).

TA-Lib equivalents (pinned by tests/test_indicators.py to 1e-8):

======================  ===========================================================
``rsi(c, 14)``           ``talib.RSI(c, 14)``
``atr(h, l, c, 14)``     ``talib.ATR(h, l, c, 14)``
``adx(h, l, c, 14)``     ``talib.ADX``, ``talib.PLUS_DI``, ``talib.MINUS_DI`` (14)
``bollinger(c, 20, 2)``  ``talib.BBANDS(c, 20, 2, 2, MA_Type.SMA)`` (population σ)
``stochastic(h,l,c)``    ``talib.STOCHF(h, l, c, fastk_period=14, fastd_period=3,
                          fastd_matype=SMA)``: %K is the raw 14-bar fast %K, %D its
                          3-bar SMA (= ``STOCH`` with slowk_period=1).  %K is reported
                          from bar 13 on (TA-Lib's STOCHF(14, 1) fastk); %D from bar 15.
``parabolic_sar(...)``   ``talib.SAR(h, l, acceleration, maximum)`` (SPEC 0.02, 0.20: config
                          ``indicators.psar_acceleration``, ``psar_max_acceleration``)
``sma``, ``ema``         ``talib.SMA``, ``talib.EMA`` (EMA seeded with the first SMA)
======================  ===========================================================

TA-Lib's zero guards are kept, with the exact-zero test of TA-Lib C 0.8 (the installed
``talib.__ta_version__``; TA-Lib 0.4 used a 1e-8 band): RSI is 0 when average gain + loss is
0, ±DI are 0 when the smoothed true range is 0 (ADX then holds its previous value, as it
does when +DI + −DI is 0), fast %K is 0 when the 14-bar range is 0.

>>> import numpy as np
>>> c = np.array([1.0, 2.0, 3.0, 2.0, 3.0])
>>> rsi(c, 2)[2:].round(4).tolist()
[100.0, 50.0, 75.0]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike
from scipy.signal import lfilter


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _recurse(x: np.ndarray, seed: float, keep: float, gain: float, hold: np.ndarray | None = None) -> np.ndarray:
    """``y_0 = seed``; ``y_k = keep·y_{k-1} + gain·x_k`` for k >= 1 (``x_0`` unused).

    Where ``hold[k]`` is True, ``y_k = y_{k-1}`` instead (TA-Lib's ADX skips undefined DX).
    Each run between holds is one ``lfilter`` call, so the cost is linear in ``len(x)``.
    """
    y = np.empty(len(x))
    y[0] = seed
    breaks = np.flatnonzero(hold[1:]) + 1 if hold is not None else np.empty(0, dtype=np.int64)
    start, state = 1, seed
    for stop in [*breaks.tolist(), len(x)]:
        if stop > start:
            y[start:stop] = lfilter([gain], [1.0, -keep], x[start:stop], zi=[keep * state])[0]
            state = y[stop - 1]
        if stop < len(x):
            y[stop] = state
        start = stop + 1
    return y


def sma(x: ArrayLike, period: int) -> np.ndarray:
    """Simple moving average ``mean(x_{t-n+1..t})``; NaN for ``t < n-1``."""
    v = _arr(x)
    out = _nan(len(v))
    if len(v) >= period:
        out[period - 1:] = sliding_window_view(v, period).mean(axis=1)
    return out


def ema(x: ArrayLike, period: int) -> np.ndarray:
    """EMA with ``k = 2/(n+1)``, seeded by the SMA of the first ``n`` values (TA-Lib EMA)."""
    v = _arr(x)
    out = _nan(len(v))
    if len(v) >= period:
        k = 2.0 / (period + 1.0)
        out[period - 1:] = _recurse(v[period - 1:], float(v[:period].mean()), 1.0 - k, k)
    return out


def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder RSI: ``100·G/(G+L)`` with G, L Wilder averages of gains / losses; first value at bar n."""
    c = _arr(close)
    out = _nan(len(c))
    if len(c) <= period:
        return out
    d = np.diff(c)
    gains, losses = np.where(d > 0, d, 0.0), np.where(d < 0, -d, 0.0)
    keep, gain = (period - 1.0) / period, 1.0 / period
    avg_gain = _recurse(np.r_[0.0, gains[period:]], gains[:period].sum() / period, keep, gain)
    avg_loss = _recurse(np.r_[0.0, losses[period:]], losses[:period].sum() / period, keep, gain)
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period:] = np.where(total == 0.0, 0.0, 100.0 * avg_gain / total)
    return out


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> np.ndarray:
    """``TR_t = max(H_t − L_t, |H_t − C_{t-1}|, |L_t − C_{t-1}|)``; NaN at bar 0."""
    h, lo, c = _arr(high), _arr(low), _arr(close)
    out = _nan(len(c))
    if len(c) > 1:
        prev = c[:-1]
        out[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(prev - h[1:]), np.abs(prev - lo[1:])))
    return out


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder ATR: first value at bar n = mean(TR_1..n), then ``(ATR·(n−1) + TR)/n``."""
    tr = true_range(high, low, close)
    out = _nan(len(tr))
    if len(tr) > period:
        out[period:] = _recurse(tr[period:], tr[1:period + 1].mean(), (period - 1.0) / period, 1.0 / period)
    return out


class DirectionalIndex(NamedTuple):
    plus_di: np.ndarray
    minus_di: np.ndarray
    adx: np.ndarray


def _directional_movement(h: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+DM_t = up if up > down and up > 0; −DM_t = down if down > up and down > 0 (bar 0 = 0)."""
    up = np.r_[0.0, np.diff(h)]
    down = np.r_[0.0, -np.diff(lo)]
    minus = np.where((down > 0) & (up < down), down, 0.0)
    plus = np.where((minus == 0) & (up > 0) & (up > down), up, 0.0)
    return plus, minus


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> DirectionalIndex:
    """Wilder ±DI and ADX.

    ``S_t = S_{t-1} − S_{t-1}/n + x_t`` for x in (+DM, −DM, TR), seeded at bar n−1 with the sum of
    bars 1..n−1; ``±DI = 100·S_±DM/S_TR`` from bar n; ``DX = 100·|+DI − −DI|/(+DI + −DI)``;
    ADX at bar 2n−1 = mean(DX_n..2n−1), then ``(ADX·(n−1) + DX)/n``.
    """
    h, lo = _arr(high), _arr(low)
    tr = true_range(h, lo, close)
    n_bars = len(h)
    plus_di, minus_di, adx_out = _nan(n_bars), _nan(n_bars), _nan(n_bars)
    if n_bars <= period:
        return DirectionalIndex(plus_di, minus_di, adx_out)
    pdm, mdm = _directional_movement(h, lo)
    keep = 1.0 - 1.0 / period
    s = slice(period - 1, None)
    s_tr = _recurse(tr[s], tr[1:period].sum(), keep, 1.0)
    s_p = _recurse(pdm[s], pdm[1:period].sum(), keep, 1.0)
    s_m = _recurse(mdm[s], mdm[1:period].sum(), keep, 1.0)
    tr_ok = s_tr != 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tr_ok, 100.0 * (s_p / s_tr), 0.0)[1:]
        m = np.where(tr_ok, 100.0 * (s_m / s_tr), 0.0)[1:]
        di_sum = p + m
        dx_ok = tr_ok[1:] & (di_sum != 0.0)
        dx = np.where(dx_ok, 100.0 * (np.abs(m - p) / di_sum), 0.0)
    plus_di[period:], minus_di[period:] = p, m
    if len(dx) >= period:
        seed = dx[:period].sum() / period
        adx_out[2 * period - 1:] = _recurse(dx[period - 1:], seed, keep, 1.0 / period, hold=~dx_ok[period - 1:])
    return DirectionalIndex(plus_di, minus_di, adx_out)


class Bollinger(NamedTuple):
    middle: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    position: np.ndarray  # (P − lower)/(upper − lower); NaN when the bands collapse
    width: np.ndarray  # (upper − lower)/SMA


def bollinger(close: ArrayLike, period: int = 20, nbdev: float = 2.0) -> Bollinger:
    """Bands ``SMA ± k·σ`` with the population σ of the last n closes (TA-Lib BBANDS, SMA type)."""
    c = _arr(close)
    mid, sd = _nan(len(c)), _nan(len(c))
    if len(c) >= period:
        win = sliding_window_view(c, period)
        mean = win.mean(axis=1)
        var = ((win - mean[:, None]) ** 2).mean(axis=1)
        mid[period - 1:] = mean
        sd[period - 1:] = np.sqrt(var)
    upper, lower = mid + nbdev * sd, mid - nbdev * sd
    span = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.where(span > 0, (c - lower) / span, np.nan)
        width = span / mid
    return Bollinger(mid, upper, lower, position, width)


class Stochastic(NamedTuple):
    k: np.ndarray
    d: np.ndarray


def stochastic(high: ArrayLike, low: ArrayLike, close: ArrayLike, k_period: int = 14, d_period: int = 3) -> Stochastic:
    """Fast stochastic: ``%K = 100·(C − LL_n)/(HH_n − LL_n)`` (0 on a flat range), ``%D = SMA_3(%K)``."""
    h, lo, c = _arr(high), _arr(low), _arr(close)
    k = _nan(len(c))
    if len(c) >= k_period:
        hh = sliding_window_view(h, k_period).max(axis=1)
        ll = sliding_window_view(lo, k_period).min(axis=1)
        rng = (hh - ll) / 100.0
        with np.errstate(divide="ignore", invalid="ignore"):
            k[k_period - 1:] = np.where(rng != 0.0, (c[k_period - 1:] - ll) / rng, 0.0)
    d = _nan(len(c))
    if len(c) >= k_period + d_period - 1:
        d[k_period - 1:] = sma(k[k_period - 1:], d_period)
    return Stochastic(k, d)


def parabolic_sar(high: ArrayLike, low: ArrayLike, acceleration: float, maximum: float) -> np.ndarray:
    """Wilder's Parabolic SAR exactly as TA-Lib SAR (first value at bar 1).

    Initial trend: short when bar 1's −DM > 0 (``L_0 − L_1 > max(0, H_1 − H_0)``), else long.
    ``SAR_{t+1} = SAR_t + AF·(EP − SAR_t)``, AF += step on each new extreme up to ``maximum``,
    never inside the last two bars' range; on penetration the SAR flips to the extreme point.
    The recurrence is path-dependent, so it is one tight loop over Python floats.
    """
    h, lo = _arr(high).tolist(), _arr(low).tolist()
    n = len(h)
    out = _nan(n)
    if n < 2:
        return out
    acceleration = min(acceleration, maximum)
    is_long = not (lo[0] - lo[1] > 0 and h[1] - h[0] < lo[0] - lo[1])
    ep, sar = (h[1], lo[0]) if is_long else (lo[1], h[0])
    af, new_low, new_high = acceleration, lo[1], h[1]
    res = [0.0] * n
    for i in range(1, n):
        prev_low, prev_high, new_low, new_high = new_low, new_high, lo[i], h[i]
        if is_long:
            if new_low <= sar:
                is_long, sar = False, max(ep, prev_high, new_high)
                res[i] = sar
                af, ep = acceleration, new_low
                sar = max(sar + af * (ep - sar), prev_high, new_high)
            else:
                res[i] = sar
                if new_high > ep:
                    ep, af = new_high, min(af + acceleration, maximum)
                sar = min(sar + af * (ep - sar), prev_low, new_low)
        elif new_high >= sar:
            is_long, sar = True, min(ep, prev_low, new_low)
            res[i] = sar
            af, ep = acceleration, new_high
            sar = min(sar + af * (ep - sar), prev_low, new_low)
        else:
            res[i] = sar
            if new_low < ep:
                ep, af = new_low, min(af + acceleration, maximum)
            sar = max(sar + af * (ep - sar), prev_high, new_high)
    out[1:] = res[1:]
    return out


def psar_position(close: ArrayLike, sar: ArrayLike, atr14: ArrayLike) -> np.ndarray:
    """``p = clip((close − SAR)/(2·ATR14), −1, 1)`` (the SPEC's SAR factor input); NaN if ATR is 0."""
    c, s, a = _arr(close), _arr(sar), _arr(atr14)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(a > 0, (c - s) / (2.0 * a), np.nan)
    return np.clip(raw, -1.0, 1.0)


def sma_distance(close: ArrayLike, period: int = 20) -> np.ndarray:
    """``D = (P − SMA_n)/SMA_n``."""
    c = _arr(close)
    m = sma(c, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (c - m) / m


def volume_ratio(volume: ArrayLike, period: int = 20) -> np.ndarray:
    """``V_t / SMA_n(V)_t`` (the average includes bar t); NaN where the average volume is 0."""
    v = _arr(volume)
    m = sma(v, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m > 0, v / m, np.nan)
