"""Pricing benchmark: one vectorised numpy call against a QuantLib Python loop, measured in the same run.

Both sides price European options with delta, gamma, theta, vega and rho on the same random inputs
(S 50-500, K/S 0.5-1.5, 1-730 days on Actual/365, r 0-6%, q 0-3%, sigma 5-150%).  The QuantLib loop
runs on the first ``n_quantlib`` options and its prices are checked against the numpy ones.
"""

from __future__ import annotations

import time

import numpy as np

from analytics.pricing import bsm_greeks
from core.config import RunConfig


def random_option_inputs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    S = rng.uniform(50.0, 500.0, n)
    days = rng.integers(1, 731, n)
    return {
        "S": S, "K": S * rng.uniform(0.5, 1.5, n), "days": days, "T": days / 365.0,
        "r": rng.uniform(0.0, 0.06, n), "q": rng.uniform(0.0, 0.03, n),
        "sigma": rng.uniform(0.05, 1.5, n), "is_call": rng.random(n) < 0.5,
    }


def _quantlib_loop(x: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Price ``n`` options one by one with ``AnalyticEuropeanEngine``; returns the NPVs (Greeks computed too)."""
    import QuantLib as ql  # imported here: only the benchmark needs it

    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, rate, div, vol = (ql.SimpleQuote(0.0) for _ in range(4))
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(div), dc, ql.Continuous)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rate), dc, ql.Continuous)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)),
    )
    engine = ql.AnalyticEuropeanEngine(process)
    npv = np.empty(n)
    for i in range(n):
        spot.setValue(float(x["S"][i]))
        rate.setValue(float(x["r"][i]))
        div.setValue(float(x["q"][i]))
        vol.setValue(float(x["sigma"][i]))
        kind = ql.Option.Call if x["is_call"][i] else ql.Option.Put
        option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(x["K"][i])),
                                  ql.EuropeanExercise(today + int(x["days"][i])))
        option.setPricingEngine(engine)
        npv[i] = option.NPV()
        option.delta(), option.gamma(), option.thetaPerDay(), option.vega(), option.rho()
    return npv


def benchmark_pricing(n_vectorised: int = 1_000_000, n_quantlib: int = 20_000, seed: int = RunConfig().seed) -> dict:
    """Options per second for ``bsm_greeks`` on ``n_vectorised`` options and for a QuantLib loop.

    The numpy figure is the best of three calls (the first also warms caches); the QuantLib loop runs once.
    Returns ``numpy_options_per_s``, ``quantlib_options_per_s``, ``speedup`` (their ratio), the seconds and
    sizes behind them, and ``max_abs_price_diff`` between the two on the QuantLib subset.
    """
    x = random_option_inputs(max(n_vectorised, n_quantlib), seed)
    args = tuple(x[k][:n_vectorised] for k in ("S", "K", "T", "r", "q", "sigma", "is_call"))
    numpy_seconds = np.inf
    for _ in range(3):
        start = time.perf_counter()
        bsm_greeks(*args)
        numpy_seconds = min(numpy_seconds, time.perf_counter() - start)
    start = time.perf_counter()
    ql_npv = _quantlib_loop(x, n_quantlib)
    quantlib_seconds = time.perf_counter() - start
    ours = bsm_greeks(*(a[:n_quantlib] for a in (x["S"], x["K"], x["T"], x["r"], x["q"], x["sigma"], x["is_call"])))
    numpy_rate = n_vectorised / numpy_seconds
    quantlib_rate = n_quantlib / quantlib_seconds
    return {
        "numpy_options_per_s": numpy_rate,
        "quantlib_options_per_s": quantlib_rate,
        "speedup": numpy_rate / quantlib_rate,
        "numpy_seconds": numpy_seconds,
        "quantlib_seconds": quantlib_seconds,
        "n_vectorised": n_vectorised,
        "n_quantlib": n_quantlib,
        "seed": seed,
        "max_abs_price_diff": float(np.max(np.abs(ours.price - ql_npv))),
        "greeks": ["price", "delta", "gamma", "theta", "vega", "rho"],
    }
