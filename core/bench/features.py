"""Benchmark of ``intelligence.features.compute_features`` and a seeded synthetic market for it.

``benchmark_features(n_days=252, seed=7)`` times the feature pass over one year of
five-minute bars (plus one-minute bars for the MTF consensus).  Bars come from
``data_factory.embedded.EmbeddedMarket`` (the last ``n_days`` sessions of its data) when
that module is importable, else from ``synthetic_market`` below.

``synthetic_market(n_days, seed)`` draws a realistic one-minute OHLCV path (daily
log-stochastic volatility, U-shaped intraday volatility and volume, overnight gaps) on
weekdays (no holiday calendar), aggregates it to five-minute and daily bars, and derives a
VIX-like daily series from the volatility state.  Labels follow ``data_factory/base.py``:
close-labelled, tz America/New_York, index ``ts``; daily indexed by naive dates ``date``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

NY_TZ = "America/New_York"
MINUTES_PER_SESSION = 390


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    bars_1m: pd.DataFrame
    bars_5m: pd.DataFrame
    daily: pd.DataFrame
    vix: pd.DataFrame


def _daily_vol(rng: np.random.Generator, n: int) -> np.ndarray:
    """Annualised daily volatility: exp of an AR(1) around ln 0.15 (persistence 0.97)."""
    eps = rng.standard_normal(n) * 0.12
    x = np.empty(n)
    x[0] = 0.0
    for i in range(1, n):  # n sessions, not bars: a few hundred iterations
        x[i] = 0.97 * x[i - 1] + eps[i]
    return 0.15 * np.exp(x)


def _minute_index(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    minute = np.timedelta64(1, "m")
    offsets = np.timedelta64(9 * 60 + 30, "m") + np.arange(1, MINUTES_PER_SESSION + 1) * minute
    stamps = (days.to_numpy().astype("datetime64[ns]")[:, None] + offsets[None, :]).reshape(-1)
    return pd.DatetimeIndex(stamps, name="ts").tz_localize(NY_TZ)


def _aggregate(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, k: int) -> dict:
    """OHLCV of consecutive blocks of ``k`` one-minute bars (arrays shaped (days, 390))."""
    n_days = o.shape[0]
    shape = (n_days, MINUTES_PER_SESSION // k, k)
    return {
        "open": o.reshape(shape)[..., 0].reshape(-1), "high": h.reshape(shape).max(axis=2).reshape(-1),
        "low": lo.reshape(shape).min(axis=2).reshape(-1), "close": c.reshape(shape)[..., -1].reshape(-1),
        "volume": v.reshape(shape).sum(axis=2).reshape(-1),
    }


def synthetic_market(n_days: int = 252, seed: int = 7, start: str = "2017-01-02", s0: float = 225.0) -> SyntheticMarket:
    """Seeded one-minute / five-minute / daily bars and a VIX-like series over ``n_days`` weekdays."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=n_days, name="date")
    sig = _daily_vol(rng, n_days)
    u = np.linspace(-1.0, 1.0, MINUTES_PER_SESSION)
    shape_vol = 0.7 + 0.8 * u**2  # U-shaped intraday volatility
    shape_vol /= np.sqrt(np.mean(shape_vol**2))
    per_min = sig[:, None] / np.sqrt(252.0 * MINUTES_PER_SESSION) * shape_vol[None, :]
    ret = per_min * rng.standard_normal((n_days, MINUTES_PER_SESSION))
    ret[:, 0] += sig * 0.3 / np.sqrt(252.0) * rng.standard_normal(n_days)  # overnight gap into the first minute
    close = s0 * np.exp(np.cumsum(ret.reshape(-1))).reshape(n_days, MINUTES_PER_SESSION)
    prev = np.r_[s0, close.reshape(-1)[:-1]].reshape(n_days, MINUTES_PER_SESSION)
    opn = prev.copy()
    opn[:, 0] = prev[:, 0] * np.exp(ret[:, 0] * 0.8)  # the open already carries most of the gap
    wiggle = np.abs(rng.standard_normal((2, n_days, MINUTES_PER_SESSION))) * per_min * close * 0.5
    high = np.maximum(opn, close) + wiggle[0]
    low = np.minimum(opn, close) - wiggle[1]
    vol = np.round(2.0e5 * (0.6 + 1.2 * u**2) * rng.lognormal(0.0, 0.4, (n_days, MINUTES_PER_SESSION)))
    idx1 = _minute_index(days)
    bars_1m = pd.DataFrame(_aggregate(opn, high, low, close, vol, 1), index=idx1)
    bars_5m = pd.DataFrame(_aggregate(opn, high, low, close, vol, 5), index=idx1[4::5])
    daily = pd.DataFrame(_aggregate(opn, high, low, close, vol, MINUTES_PER_SESSION), index=days)
    vix_level = 100.0 * sig * 1.15 * np.exp(0.05 * rng.standard_normal(n_days))
    vix = pd.DataFrame({"vix": vix_level, "is_proxy": np.zeros(n_days, dtype=bool)}, index=days)
    return SyntheticMarket(bars_1m, bars_5m, daily, vix)


def _embedded_inputs(n_days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    from data_factory.embedded import EmbeddedMarket

    market = EmbeddedMarket(seed=seed)
    daily = market.daily_bars()
    start, end = daily.index[-n_days].date(), daily.index[-1].date()
    return (market.intraday_bars(start, end, 5), market.intraday_bars(start, end, 1), daily, market.vix(),
            "embedded")


def benchmark_features(n_days: int = 252, seed: int = 7, repeats: int = 3) -> dict[str, float | int | str]:
    """Seconds for ``compute_features`` on ``n_days`` sessions of 5-min (+1-min) bars; best of ``repeats``."""
    from intelligence.features import compute_features

    try:
        bars_5m, bars_1m, daily, vix, source = _embedded_inputs(n_days, seed)
    except ImportError:
        m = synthetic_market(n_days + 300, seed)  # 300 extra sessions of daily history for IV rank / σ*
        cut = m.bars_5m.index[-n_days * 78]
        bars_5m, bars_1m = m.bars_5m.loc[cut:], m.bars_1m.loc[m.bars_1m.index >= cut - pd.Timedelta("4min")]
        daily, vix, source = m.daily, m.vix, "synthetic"
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        compute_features(bars_5m, daily, vix, (1, 5, 15), bars_1m)
        best = min(best, time.perf_counter() - t0)
    n = len(bars_5m)
    return {
        "workload": "features_5m_1y", "source": source, "bars": n, "bars_1m": len(bars_1m), "seconds": best,
        "bars_per_second": n / best, "seconds_per_10k_bars": best * 1e4 / n,
    }


if __name__ == "__main__":
    print(benchmark_features())
