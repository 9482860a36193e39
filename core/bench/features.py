"""Benchmark of ``intelligence.features.compute_features`` over one year of five-minute bars.

``benchmark_features(n_days=252, seed=...)`` times the feature pass over the last ``n_days``
sessions of a market source's five-minute bars (plus one-minute bars for the MTF
consensus), with the source's whole daily history before them for IV rank and σ*.  The
source is ``data_factory.embedded.EmbeddedMarket``, or ``data_factory.synthetic.SyntheticMarket``
when the embedded data cannot be loaded (the one synthetic market of the project).
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd

from core.config import MTFConfig, RunConfig
from data_factory.base import MarketSource

SYNTHETIC_START = dt.date(2016, 1, 4)  # 300+ sessions of daily history before a 2017-2018 intraday year
SYNTHETIC_END = dt.date(2018, 12, 31)


def _market(seed: int) -> tuple[MarketSource, str]:
    try:
        from data_factory.embedded import EmbeddedMarket

        return EmbeddedMarket(seed=seed), "embedded"
    except ImportError:  # arch (which ships the embedded data) is missing
        from data_factory.synthetic import SyntheticMarket

        return SyntheticMarket(SYNTHETIC_START, SYNTHETIC_END, seed=seed), "synthetic"


def feature_inputs(market: MarketSource, n_days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(5-minute bars, 1-minute bars, daily bars, VIX) with intraday bars over the last ``n_days`` sessions."""
    daily = market.daily_bars()
    start, end = daily.index[-n_days].date(), daily.index[-1].date()
    return market.intraday_bars(start, end, 5), market.intraday_bars(start, end, 1), daily, market.vix()


def benchmark_features(
    n_days: int = 252, seed: int = RunConfig().seed, repeats: int = 3
) -> dict[str, float | int | str]:
    """Seconds for ``compute_features`` on ``n_days`` sessions of 5-min (+1-min) bars; best of ``repeats``."""
    from intelligence.features import compute_features

    market, source = _market(seed)
    bars_5m, bars_1m, daily, vix = feature_inputs(market, n_days)
    timeframes = MTFConfig().timeframes
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        compute_features(bars_5m, daily, vix, timeframes, bars_1m)
        best = min(best, time.perf_counter() - t0)
    n = len(bars_5m)
    return {
        "workload": "features_5m_1y", "source": source, "bars": n, "bars_1m": len(bars_1m), "seconds": best,
        "bars_per_second": n / best, "seconds_per_10k_bars": best * 1e4 / n,
    }


if __name__ == "__main__":
    print(benchmark_features())
