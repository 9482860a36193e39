"""Realized volatility, IV rank / percentile, the volatility risk premium and σ*.

Pure numpy.  Every rolling statistic at position ``t`` uses only positions ``<= t`` (the
window *includes* ``t``), so the prefix of a series gives the prefix of the result.

* Realized vol over the last N log returns, annualised per bar frequency::

      RV_t = sqrt(252·b/N · Σ_{s=t-N+1..t} r_s²),   r_s = ln(P_s/P_{s-1}),  b = bars per day

  (b = 78 for five-minute bars, 1 for daily bars; with N = b·d this is ``sqrt(252/d · Σ r²)``).
* IV rank over a rolling window of W observations: ``IVR = 100·(IV − min)/(max − min)``.
* IV percentile: ``100 · #{s in window, s < t : IV_s < IV_t} / #{s in window, s < t}``
  (share of the *other* days of the window strictly below today; 0 at a new low, 100 at a
  new high — ``scipy.stats.percentileofscore(prior, IV_t, kind="strict")``).
* ``VRP = IV_ATM − RV``; entry gate ``VRP > vrp_min`` (SPEC: 0.02, config ``filters.vrp_min``).
* ``σ*`` = the same percentile (as a fraction in [0, 1]) of the current realized vol within
  its trailing year (252 observations).

>>> import numpy as np
>>> iv_rank(np.array([10.0, 20.0, 15.0]), window=3).tolist()
[nan, nan, 50.0]
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

TRADING_DAYS = 252
FIVE_MINUTE_BARS_PER_DAY = 78


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """``(len(x), window)`` view whose row t holds ``x_{t-window+1..t}`` (NaN-padded on the left)."""
    padded = np.concatenate([np.full(window - 1, np.nan), x])
    return sliding_window_view(padded, window)


def log_returns(close: ArrayLike) -> np.ndarray:
    """``r_t = ln(P_t/P_{t-1})``; NaN at t = 0."""
    c = _arr(close)
    out = np.full(len(c), np.nan)
    if len(c) > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = np.log(c[1:] / c[:-1])
    return out


def realized_vol(close: ArrayLike, window: int, bars_per_day: float = 1.0) -> np.ndarray:
    """Rolling ``RV_t = sqrt(252·bars_per_day/N · Σ r²)`` over the last ``N = window`` log returns.

    NaN until ``window`` returns exist (t < window) and wherever a return in the window is NaN.
    """
    if window < 1:
        raise ValueError(f"realized-vol window must be >= 1, got {window}")
    r = log_returns(close)
    out = np.full(len(r), np.nan)
    if len(r) > window:
        sq = sliding_window_view(r[1:] ** 2, window).sum(axis=1)
        out[window:] = np.sqrt(TRADING_DAYS * bars_per_day / window * sq)
    return out


def _min_periods(window: int, min_periods: int | None) -> int:
    mp = window if min_periods is None else min_periods
    if not 2 <= mp <= window:
        raise ValueError(f"min_periods must lie in [2, {window}], got {mp}")
    return mp


def iv_rank(iv: ArrayLike, window: int = TRADING_DAYS, min_periods: int | None = None) -> np.ndarray:
    """``100·(IV_t − min)/(max − min)`` over the last ``window`` finite values (including t).

    NaN when IV_t is NaN, fewer than ``min_periods`` (default ``window``) finite values, or max == min.
    """
    x = _arr(iv)
    mp = _min_periods(window, min_periods)
    w = _windows(x, window)
    finite = np.isfinite(w)
    lo = np.where(finite, w, np.inf).min(axis=1)
    hi = np.where(finite, w, -np.inf).max(axis=1)
    ok = (finite.sum(axis=1) >= mp) & np.isfinite(x) & (hi > lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 100.0 * (x - lo) / (hi - lo), np.nan)


def rolling_percentile(x: ArrayLike, window: int = TRADING_DAYS, min_periods: int | None = None) -> np.ndarray:
    """Fraction in [0, 1] of the other finite values of the window that are strictly below ``x_t``.

    ``#{s in (t−window, t) : x_s < x_t} / #{s in (t−window, t) : x_s finite}``; NaN when x_t is NaN
    or the window holds fewer than ``min_periods`` (default ``window``) finite values including t.
    """
    v = _arr(x)
    mp = _min_periods(window, min_periods)
    w = _windows(v, window)
    prior = w[:, :-1]
    n_prior = np.isfinite(prior).sum(axis=1)
    below = (prior < v[:, None]).sum(axis=1)
    ok = np.isfinite(v) & (n_prior + 1 >= mp)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, below / n_prior, np.nan)


def iv_percentile(iv: ArrayLike, window: int = TRADING_DAYS, min_periods: int | None = None) -> np.ndarray:
    """IV percentile 0–100: ``100 · rolling_percentile(iv, window)``."""
    return 100.0 * rolling_percentile(iv, window, min_periods)


def sigma_star(rv: ArrayLike, window: int = TRADING_DAYS, min_periods: int | None = None) -> np.ndarray:
    """σ* in [0, 1]: percentile of the current realized vol within its trailing ``window`` values."""
    return rolling_percentile(rv, window, min_periods)


def vrp(iv_atm: ArrayLike, rv: ArrayLike) -> np.ndarray:
    """Volatility risk premium ``VRP = IV_ATM − RV`` (both annualised decimals)."""
    return _arr(iv_atm) - _arr(rv)


def vrp_gate(vrp_values: ArrayLike, minimum: float) -> np.ndarray:
    """Entry gate ``VRP > minimum`` (False where VRP is NaN)."""
    v = _arr(vrp_values)
    return np.isfinite(v) & (v > minimum)
