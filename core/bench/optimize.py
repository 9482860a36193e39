"""Optimizer rows of ``--mode benchmark``: fast-vs-reference speed, evaluations per minute on 1
and 2 workers, the whole SPEC §7 grid's time, peak memory per worker and in total.

All on one year of 5-minute bars (the backtest's default range).  The rates are measured on
warm workers (market loaded, chain caches filled by a warm-up batch), the way a long search
runs; the whole-grid time is the SPEC grid's size over the measured 2-worker rate (a real
run's time is printed by ``--mode optimize`` and recorded in its run.json).
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from core.config import AppConfig
from core.optimize.executor import ProcessExecutor
from core.optimize.fast import SharedData, reference_outcome, run_fast
from core.optimize.space import DEFAULT_GRIDS, grid_points, grid_size

MEMORY_BUDGET_MIB = 4096


def _peak_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _peak_self_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rate(cfg: AppConfig, workers: int, points: list[dict[str, Any]], scope: dict[str, str], warm: int
          ) -> tuple[float, float, float]:
    """Evaluations per minute of ``points[warm:]`` on ``workers`` processes warmed by ``points[:warm]``
    and by the same points once (a warm worker has the chains and mark paths of those dates
    cached), the mean seconds of one evaluation inside a worker, and the 1-minute load average:
    when the load exceeds the CPUs, workers share cores and the rate cannot scale."""
    ex = ProcessExecutor(cfg, 0, workers)
    try:
        def tasks(pts: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
            return [{"id": offset + k, "kind": "is", "scope": scope, "key": str(offset + k), "point": p}
                    for k, p in enumerate(pts)]
        list(ex.map(tasks(points[:warm], 0)))
        list(ex.map(tasks(points[warm:], 10_000)))
        t0 = time.perf_counter()
        res = list(ex.map(tasks(points[warm:], warm)))
        wall = time.perf_counter() - t0
        per_eval = sum(float(r["seconds"]) for r in res) / max(len(res), 1)
        return 60.0 * len(res) / wall, per_eval, os.getloadavg()[0]
    finally:
        ex.close()


def optimizer_workloads(cfg: AppConfig, repeats: int = 2, batch: int = 48) -> list[dict[str, Any]]:
    cfg = cfg.with_overrides({"run.progress": False})
    shared = SharedData(cfg)
    start, end = shared.inputs.start.isoformat(), shared.inputs.end.isoformat()
    scope = {"start": start, "end": end}
    ref_s, fast_s = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        reference_outcome(cfg, shared)
        ref_s = min(ref_s, time.perf_counter() - t0)
    run_fast(cfg, shared)  # warm: chains at entry times and mark paths cached, as in a worker
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        run_fast(cfg, shared)
        fast_s = min(fast_s, time.perf_counter() - t0)
    del shared
    grid = list(grid_points(DEFAULT_GRIDS[1]))
    points = grid[:: max(1, len(grid) // (8 + batch))][:8 + batch]
    rate1, per1, load1 = _rate(cfg, 1, points, scope, 8)  # 8 warm-up evaluations: every worker's caches filled
    rate2, per2, load2 = _rate(cfg, 2, points, scope, 8)
    per_worker = _peak_children_mib()
    total_grid = sum(grid_size(g) for g in DEFAULT_GRIDS.values())
    grid_s = 60.0 * total_grid / rate2 if rate2 > 0 else float("inf")
    total_mib = _peak_self_mib() + 2 * per_worker
    speedup = ref_s / fast_s if fast_s > 0 else None
    scaling = rate2 / rate1 if rate1 > 0 else None
    return [
        {"workload": f"optimizer: reference backtest ({start}..{end}, in-process Backtrader)",
         "seconds": round(ref_s, 3), "target": "reference"},
        {"workload": "optimizer: fast evaluation, same config, warm worker", "seconds": round(fast_s, 4),
         "speedup_vs_reference": round(speedup, 1) if speedup else None,
         "figure": f"{speedup:.1f}x faster than the reference" if speedup else "",
         "target": ">= 20x reference", "target_met": bool(speedup and speedup >= 20)},
        {"workload": "optimizer: evaluations per minute, 1 worker (process)", "evals_per_minute": round(rate1, 1),
         "worker_seconds_per_evaluation": round(per1, 4), "load_average": round(load1, 2),
         "figure": f"{rate1:.0f} evaluations/min"},
        {"workload": "optimizer: evaluations per minute, 2 workers (process)", "evals_per_minute": round(rate2, 1),
         "worker_seconds_per_evaluation": round(per2, 4), "load_average": round(load2, 2),
         "scaling_vs_1_worker": round(scaling, 2) if scaling else None,
         "figure": f"{rate2:.0f} evaluations/min, {scaling:.2f}x one worker" if scaling else "",
         "target": ">= 1.8x 1 worker", "target_met": bool(scaling and scaling >= 1.8)},
        {"workload": f"optimizer: whole SPEC §7 grid ({total_grid} evaluations), one year, 2 workers (estimated)",
         "seconds": round(grid_s, 1), "figure": f"{grid_s / 60:.1f} min", "target": "<= 600 s",
         "target_met": grid_s <= 600},
        {"workload": "optimizer: peak memory per worker", "peak_mib": round(per_worker, 1),
         "figure": f"{per_worker:.0f} MiB", "target": f"<= {MEMORY_BUDGET_MIB} MiB",
         "target_met": per_worker <= MEMORY_BUDGET_MIB},
        {"workload": "optimizer: peak memory in total (main + 2 workers)", "peak_mib": round(total_mib, 1),
         "figure": f"{total_mib:.0f} MiB", "target": f"<= {MEMORY_BUDGET_MIB} MiB",
         "target_met": total_mib <= MEMORY_BUDGET_MIB},
    ]


if __name__ == "__main__":  # python -m core.bench.optimize: the rows alone
    import json

    print(json.dumps(optimizer_workloads(AppConfig()), indent=2))
