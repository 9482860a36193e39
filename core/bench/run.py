"""``--mode benchmark``: throughput of every workload, measured in one process.

Backtest workloads run on the same bars (the last full year of the chosen source, 5-minute)
and are reported as seconds per 10k bars, bars per second and a ratio against plain
Backtrader (SMA(20) + RSI(14)) timed in the same run — ratios survive a slower machine,
absolute numbers do not.  Results go to ``reports/benchmark.json`` and a console table.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.backtest.engine import run_plain_sma_rsi
from core.backtest.run import build_features, load_inputs, run_backtest
from core.config import AppConfig
from core.outputs.backtest import fmt_value

REPO_ROOT = Path(__file__).resolve().parents[2]
FULL_INTELLIGENCE = {"mtf.use_mtf": True, "fuzzy.use_fuzzy": True, "fuzzy.dynamic_sizing": True}


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _row(name: str, seconds: float, n_bars: int, baseline: float | None, target: str = "") -> dict[str, Any]:
    return {"workload": name, "seconds": round(seconds, 4), "bars": n_bars,
            "seconds_per_10k_bars": round(seconds / n_bars * 10_000, 4) if n_bars else None,
            "bars_per_second": round(n_bars / seconds, 1) if seconds > 0 and n_bars else None,
            "ratio_vs_plain": round(seconds / baseline, 3) if baseline else None, "target": target}


def backtest_workloads(cfg: AppConfig, repeats: int = 2) -> list[dict[str, Any]]:
    """Plain Backtrader vs the baseline condor vs the full-intelligence condor, same bars.

    Each condor run is timed as a user runs it: features computed, Backtrader clock, driver,
    broker — everything but loading the market (shared, timed separately)."""
    cfg = cfg.with_overrides({"run.progress": False, "run.no_plot": True})
    t0 = time.perf_counter()
    inputs = load_inputs(cfg)
    load_s = time.perf_counter() - t0
    bars = inputs.bars.iloc[inputs.first_bar:]
    n = len(bars)
    plain = _best_of(lambda: run_plain_sma_rsi(bars), repeats)
    rows = [_row("market load (bars + chains source)", load_s, n, None),
            _row("plain Backtrader SMA(20)+RSI(14)", plain, n, plain, "reference")]

    def condor(c: AppConfig) -> Callable[[], Any]:
        return lambda: run_backtest(c, inputs=inputs, features=build_features(c, inputs))

    rows.append(_row("baseline iron condor", _best_of(condor(cfg), repeats), n, plain, "<= 1.8x plain"))
    full = cfg.with_overrides(FULL_INTELLIGENCE)
    rows.append(_row("full-intelligence iron condor (MTF + fuzzy)", _best_of(condor(full), repeats), n, plain,
                     "<= 4x plain"))
    feat = _best_of(lambda: build_features(full, inputs), repeats)
    rows.append(_row("all features, one year of 5-minute bars", feat, len(inputs.bars), None, "<= 1 s"))
    return rows


def component_workloads(seed: int) -> list[dict[str, Any]]:
    from core.bench.chain import benchmark_chain_build
    from core.bench.pricing import benchmark_pricing

    price = benchmark_pricing(n_vectorised=1_000_000, n_quantlib=20_000, seed=seed)
    chain = benchmark_chain_build(n_timestamps=100, seed=seed)
    return [
        {"workload": "BSM price + Greeks, 1M options (numpy)", "seconds": price.get("numpy_seconds"),
         "options_per_second": price.get("numpy_options_per_s"),
         "figure": f"{price.get('numpy_options_per_s', 0):,.0f} options/s, {price.get('speedup', 0):.0f}x QuantLib",
         "target": ">= 100x QuantLib"},
        {"workload": "QuantLib Python loop (reference)", "seconds": price.get("quantlib_seconds"),
         "options_per_second": price.get("quantlib_options_per_s"),
         "figure": f"{price.get('quantlib_options_per_s', 0):,.0f} options/s"},
        {"workload": "chain build, all expiries 0-60 DTE", "ms_per_chain": chain.get("ms_per_timestamp"),
         "figure": f"{chain.get('ms_per_timestamp', 0):.2f} ms per timestamp", "target": "<= 5 ms"},
    ]


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_benchmark(cfg: AppConfig, out: Path | None = None) -> dict[str, Any]:
    rows = backtest_workloads(cfg)
    backtest_peak = _peak_mib()
    rows += component_workloads(cfg.run.seed) + _forecaster_rows(cfg.run.seed)
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "peak_memory_mib_after_backtests": backtest_peak,
        "peak_memory_mib": _peak_mib(),
        "workloads": rows,
    }
    path = out or REPO_ROOT / "reports" / "benchmark.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    payload["path"] = str(path)
    if not cfg.run.no_plot:
        from core.outputs.report_extra import build_benchmark_report

        payload["pdf"] = str(build_benchmark_report(path))
    return payload


def _forecaster_rows(seed: int) -> list[dict[str, Any]]:
    try:
        from core.bench.forecaster import benchmark_forecaster
    except ImportError:  # forecaster not installed in this checkout
        return []
    res = benchmark_forecaster(seed=seed)
    return [
        {"workload": "forecaster training, chunked scan (4L d64, 32x128, CPU)",
         "tokens_per_second": res.get("train_tokens_per_s_chunked"),
         "figure": f"{res.get('train_tokens_per_s_chunked', 0):,.0f} tokens/s", "target": ">= 28k tokens/s"},
        {"workload": "forecaster training, sequential scan (reference)",
         "tokens_per_second": res.get("train_tokens_per_s_sequential"),
         "figure": f"{res.get('train_tokens_per_s_sequential', 0):,.0f} tokens/s"},
        {"workload": "forecaster streaming inference", "ms_per_bar": res.get("streaming_ms_per_bar"),
         "figure": f"{res.get('streaming_ms_per_bar', 0):.2f} ms per bar", "target": "<= 5 ms"},
    ]


def run_benchmark_cli(cfg: AppConfig) -> int:
    from rich.console import Console
    from rich.table import Table

    payload = run_benchmark(cfg)
    table = Table(title="Quantor-MTFuzz benchmark")
    for col in ("workload", "s / 10k bars", "bars/s", "x plain", "figure", "target"):
        table.add_column(col)
    for r in payload["workloads"]:
        cells = (fmt_value(r.get(k), "") for k in ("seconds_per_10k_bars", "bars_per_second", "ratio_vs_plain"))
        table.add_row(str(r["workload"]), *cells, str(r.get("figure", "")), str(r.get("target", "")))
    console = Console(width=max(Console().width, 140))
    console.print(table)
    console.print(f"peak memory {payload['peak_memory_mib_after_backtests']} MiB after the backtests, "
                  f"{payload['peak_memory_mib']} MiB in all; written to {payload['path']}")
    return 0
