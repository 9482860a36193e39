"""``--mode benchmark``: throughput of every workload, measured in one process.

Backtest workloads run on the same bars (the last full year of the chosen source, 5-minute)
and are reported as seconds per 10k bars, bars per second and a ratio against plain
Backtrader (SMA(20) + RSI(14)) timed in the same run — ratios survive a slower machine,
absolute numbers do not.  Results go to ``<out>/benchmark.json`` (+ ``benchmark.pdf``; default folder
``reports/benchmark``, ``-2``, ``-3`` … on reruns, the one output rule of ``data_factory.out_folder``) and a
console table.

Every row with a target carries ``target_met`` (True / False; None when the target cannot be
read or the figure is missing); missed targets are marked MISSED in the console and the PDF.
The machine's state is recorded beside the figures: load average before and after, CPU count
and thread settings (BLAS/OpenMP environment, torch intra-op threads, live threads), with a
warning when the machine was busy (1-minute load above half the CPUs), since timings are then
not comparable.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import sys
import threading
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
         "options_per_second": price.get("numpy_options_per_s"), "speedup_vs_quantlib": price.get("speedup"),
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


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
BUSY_LOAD_PER_CPU = 0.5


def machine_state() -> dict[str, Any]:
    """Load average (1, 5, 15 min), CPU count and the thread settings that change timings."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        load = []
    threads: dict[str, Any] = {"live_threads": threading.active_count(),
                               **{name.lower(): os.environ.get(name) for name in THREAD_ENV}}
    torch = sys.modules.get("torch")
    if torch is not None:
        threads["torch_intra_op"] = int(torch.get_num_threads())
    return {"cpu_count": os.cpu_count(), "load_average": load, "threads": threads}


def is_busy(state: dict[str, Any]) -> bool:
    """True when the 1-minute load average exceeds half the CPUs."""
    load, cpus = state.get("load_average") or [], state.get("cpu_count") or 1
    return bool(load) and load[0] > BUSY_LOAD_PER_CPU * cpus


_TARGETS: tuple[tuple[re.Pattern[str], tuple[str, ...], int], ...] = (  # pattern, figure keys, +1 >= / -1 <=
    (re.compile(r"^<=\s*([0-9.]+)\s*x\s*plain$"), ("ratio_vs_plain",), -1),
    (re.compile(r"^<=\s*([0-9.]+)\s*s$"), ("seconds",), -1),
    (re.compile(r"^<=\s*([0-9.]+)\s*ms$"), ("ms_per_chain", "ms_per_bar"), -1),
    (re.compile(r"^>=\s*([0-9.]+)\s*x\s*QuantLib$"), ("speedup_vs_quantlib",), 1),
    (re.compile(r"^>=\s*([0-9.]+)k\s*tokens/s$"), ("tokens_per_second",), 1000),
    (re.compile(r"^>=\s*([0-9.]+)\s*x\s*reference$"), ("speedup_vs_reference",), 1),
    (re.compile(r"^>=\s*([0-9.]+)\s*x\s*1 worker$"), ("scaling_vs_1_worker",), 1),
    (re.compile(r"^<=\s*([0-9.]+)\s*MiB$"), ("peak_mib",), -1),
)


def target_met(row: dict[str, Any]) -> bool | None:
    """Whether the row's figure meets its ``target`` text (``<= 1.8x plain``, ``<= 1 s``, ``<= 5 ms``,
    ``>= 100x QuantLib``, ``>= 28k tokens/s``); None without a readable target or figure."""
    target = str(row.get("target") or "").strip()
    for pattern, keys, kind in _TARGETS:
        m = pattern.match(target)
        if not m:
            continue
        figure = next((row[k] for k in keys if row.get(k) is not None), None)
        if figure is None:
            return None
        bound = float(m.group(1)) * (kind if kind > 1 else 1)
        return bool(float(figure) <= bound) if kind < 0 else bool(float(figure) >= bound)
    return None


def run_benchmark(cfg: AppConfig, out: Path | None = None, warn: Any = None) -> dict[str, Any]:
    before = machine_state()
    if is_busy(before) and warn is not None:
        warn(f"warning: the machine is busy (load average {before['load_average'][0]} on {before['cpu_count']} "
             "CPUs); timings will be slower than on an idle machine")
    rows = backtest_workloads(cfg)
    backtest_peak = _peak_mib()
    rows += component_workloads(cfg.run.seed) + _forecaster_rows(cfg.run.seed)
    from core.bench.optimize import optimizer_workloads

    rows += optimizer_workloads(cfg)
    for row in rows:
        if row.get("target") and row["target"] != "reference":
            row["target_met"] = target_met(row)
    after = machine_state()
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": before["cpu_count"], "load_average_before": before["load_average"],
                    "load_average_after": after["load_average"], "threads": after["threads"],
                    "busy": is_busy(before) or is_busy(after)},
        "peak_memory_mib_after_backtests": backtest_peak,
        "peak_memory_mib": _peak_mib(),
        "missed_targets": [r["workload"] for r in rows if r.get("target_met") is False],
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


def met_text(row: dict[str, Any]) -> str:
    """``met`` / ``MISSED`` / blank (no target) for a workload row."""
    met = row.get("target_met")
    return "" if met is None else "met" if met else "MISSED"


def run_benchmark_cli(cfg: AppConfig) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from data_factory.out_folder import atomic_dir, check_target, fresh_default

    console = Console()
    err = Console(stderr=True)
    target = Path(cfg.run.out) if cfg.run.out else fresh_default(REPO_ROOT / "reports" / "benchmark")
    check_target(target, cfg.run.force)  # refuse before the long run, not after it
    with atomic_dir(target, cfg.run.force) as tmp:
        payload = run_benchmark(cfg, out=tmp / "benchmark.json",
                                warn=lambda text: err.print(text, style="yellow", highlight=False))
    payload["path"] = str(target.resolve() / "benchmark.json")
    if "pdf" in payload:
        payload["pdf"] = str(target.resolve() / "benchmark.pdf")
    table = Table(title="Quantor-MTFuzz benchmark", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("workload", "s/10k bars", "x plain", "figure", "target", ""):
        table.add_column(col, overflow="fold", justify="left" if col in ("workload", "figure", "target") else "right")
    for r in payload["workloads"]:
        cells = (fmt_value(r.get(k), "") for k in ("seconds_per_10k_bars", "ratio_vs_plain"))
        mark = met_text(r)
        table.add_row(str(r["workload"]), *cells, str(r.get("figure", "")), str(r.get("target", "")),
                      f"[bold red]{mark}[/]" if mark == "MISSED" else mark)
    console.print(table)
    machine = payload["machine"]
    console.print(f"load average {machine['load_average_before']} before, {machine['load_average_after']} after, "
                  f"{machine['cpu_count']} CPUs; threads {machine['threads']}", highlight=False)
    if payload["missed_targets"]:
        console.print(f"[bold red]MISSED[/] {len(payload['missed_targets'])} target(s): "
                      f"{'; '.join(payload['missed_targets'])}" + (" (the machine was busy)" if machine["busy"]
                                                                    else ""), highlight=False)
    console.print(f"peak memory {payload['peak_memory_mib_after_backtests']} MiB after the backtests, "
                  f"{payload['peak_memory_mib']} MiB in all; written to {payload['path']}", highlight=False)
    return 0
