"""Benchmark of modelled option-chain building (``ModelChainSource``).

Inputs are built here from the data the ``arch`` package ships (S&P 500 closes / 10 as a
SPY-like close labelled 16:00 America/New_York, and the VIX 2014-2018), so the figure does not
depend on the embedded data source.  Each of ``n_timestamps`` distinct session closes (drawn with
``numpy.random.default_rng(seed)``) gets its full 0-60 DTE chain built from cold caches for that
date; the report is milliseconds per timestamp (target <= 5 ms) plus chain sizes and the cost of
``marks`` (4-leg mark-to-market call and per contract in a 1,000-contract batch).

    python -c "from core.bench.chain import benchmark_chain_build; print(benchmark_chain_build())"
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from core.config import RunConfig
from data_factory.base import NY_TZ
from data_factory.chains import ModelChainSource


def _arch_inputs() -> tuple[pd.Series, pd.DataFrame]:
    """SPY-like closes (S&P 500 / 10 at 16:00 ET) and the daily VIX frame from ``arch.data``."""
    from arch.data import sp500, vix

    closes = sp500.load()["Close"] / 10.0
    index = pd.DatetimeIndex(closes.index).tz_localize(NY_TZ) + pd.Timedelta(hours=16)
    spot = pd.Series(closes.to_numpy(dtype=float), index=index, name="close")
    vix_frame = vix.load()[["vix"]].dropna()
    vix_frame.index = pd.DatetimeIndex(vix_frame.index).normalize()
    return spot, vix_frame


def _time_marks(source: ModelChainSource, ts: pd.Timestamp, rng: np.random.Generator) -> dict[str, float]:
    """Microseconds per 4-contract ``marks`` call and per contract in a 1,000-contract batch."""
    snap = source.snapshot(ts, 20, 60)
    expiry = snap.expiries[0]
    strikes = snap.slices[expiry].strikes
    legs = np.array([strikes[10], strikes[30], strikes[-30], strikes[-10]])
    rights = np.array([False, False, True, True])
    expiries = np.array([expiry] * 4, dtype="datetime64[D]")
    reps = 500
    start = time.perf_counter()
    for _ in range(reps):
        source.marks(ts, expiries, legs, rights)
    per_call = (time.perf_counter() - start) / reps * 1e6
    batch_k = rng.choice(strikes, 1000)
    batch_e = np.array([expiry] * 1000, dtype="datetime64[D]")
    batch_c = rng.random(1000) < 0.5
    start = time.perf_counter()
    for _ in range(50):
        source.marks(ts, batch_e, batch_k, batch_c)
    per_contract = (time.perf_counter() - start) / 50 / 1000 * 1e6
    return {"marks_us_per_4leg_call": round(per_call, 1), "marks_us_per_contract_batch1000": round(per_contract, 3)}


def benchmark_chain_build(n_timestamps: int = 200, seed: int = RunConfig().seed) -> dict[str, float]:
    """Build the 0-60 DTE chain at ``n_timestamps`` session closes and time it.

    Returns ``ms_per_timestamp`` (mean), ``ms_p50``, ``ms_p95``, mean ``expiries`` and ``strikes``
    per chain, ``contracts_per_second`` (calls + puts priced) and the ``marks`` timings.
    """
    spot, vix_frame = _arch_inputs()
    window = spot[(spot.index >= pd.Timestamp(vix_frame.index[1]).tz_localize(NY_TZ))]
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(window), size=min(n_timestamps, len(window)), replace=False))
    stamps = [window.index[i] for i in picks]
    source = ModelChainSource(spot, vix_frame, seed=seed)
    source.snapshot(window.index[0], 0, 60)  # warm-up: calendar, VIX table, imports
    timings, n_exp, n_strikes = [], [], []
    for ts in stamps:
        start = time.perf_counter()
        snap = source.snapshot(ts, 0, 60)
        timings.append(time.perf_counter() - start)
        n_exp.append(len(snap.slices))
        n_strikes.append(np.mean([len(s.strikes) for s in snap.slices.values()]))
    ms = np.array(timings) * 1e3
    contracts = 2.0 * np.array(n_exp) * np.array(n_strikes)
    result = {
        "n_timestamps": float(len(stamps)),
        "ms_per_timestamp": round(float(ms.mean()), 3),
        "ms_p50": round(float(np.percentile(ms, 50)), 3),
        "ms_p95": round(float(np.percentile(ms, 95)), 3),
        "expiries_mean": round(float(np.mean(n_exp)), 2),
        "strikes_mean": round(float(np.mean(n_strikes)), 1),
        "contracts_per_second": round(float(contracts.sum() / ms.sum() * 1e3), 0),
    }
    result.update(_time_marks(source, stamps[len(stamps) // 2], rng))
    return result


if __name__ == "__main__":
    print(benchmark_chain_build())
