"""The six-phase search (SPEC §7): each phase's grid with the earlier phases fixed at their best.

``Evaluator`` turns points into results through an executor, writes each finished one to the
journal at once and never evaluates a point twice (within a run, across phases, or across a
``--resume``).  ``search`` runs the phases in order with the grid sampler (every point) or
Optuna's TPE (``--trials`` points per phase, asked in batches of a fixed size so the
sequence does not depend on the number of workers).  The best of a phase is the highest
guarded fitness, ties broken by the canonical text of the point — never by completion order.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.optimize.fast import WORST_FITNESS
from core.optimize.journal import Journal, result_key
from core.optimize.space import PHASE_NAMES, Space, Value, grid_points, grid_size, point_key

Point = dict[str, Value]
Scope = dict[str, str]

TPE_BATCH = 4  # points asked of TPE before telling it their results (fixed: results must not depend on workers)


def fitness_of(result: dict[str, Any]) -> float:
    if "invalid" in result:
        return WORST_FITNESS
    return float(result["score"]["fitness"])


def rank_key(result: dict[str, Any]) -> tuple[float, str]:
    """Sort key: highest fitness first, then the point's canonical text."""
    return (-fitness_of(result), result["key"])


class Interrupted(Exception):
    """Ctrl-C during a search: the journal holds every finished evaluation."""


class Evaluator:
    """Points -> results through an executor, journalled, each point evaluated once."""

    def __init__(self, executor: Any, journal: Journal | None, done: dict[str, dict[str, Any]] | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.executor = executor
        self.journal = journal
        self.cache: dict[str, dict[str, Any]] = dict(done or {})
        self.progress = progress
        self.evaluated = 0  # run in this session (not read from a journal)
        self.reused = 0
        self._next_id = 0

    def evaluate(self, kind: str, scope: Scope, points: Sequence[Point],
                 on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        keys = [point_key(p) for p in points]
        tasks = []
        seen: set[str] = set()
        for p, k in zip(points, keys, strict=True):
            rk = result_key(kind, scope, k)
            if rk in self.cache:
                self.reused += 1
                if on_result is not None:
                    on_result(self.cache[rk])
                continue
            if rk in seen:
                continue
            seen.add(rk)
            self._next_id += 1
            tasks.append({"id": self._next_id, "kind": kind, "scope": scope, "key": k, "point": dict(p)})
        by_id = {t["id"]: t["point"] for t in tasks}
        try:
            for res in self.executor.map(tasks):
                row = dict(res)
                row["point"] = by_id[res["id"]]
                self.cache[result_key(kind, scope, row["key"])] = row
                self.evaluated += 1
                if self.journal is not None:
                    self.journal.write(row)
                if on_result is not None:
                    on_result(row)
        except KeyboardInterrupt:
            raise Interrupted() from None
        return [self.cache[result_key(kind, scope, k)] for k in keys]


@dataclass(slots=True)
class PhaseSummary:
    phase: int
    name: str
    evaluations: int
    valid: int
    eligible: int
    best_fitness: float | None
    worst_fitness: float | None
    median_fitness: float | None
    spread: float | None  # best - median of the eligible sets
    seconds: float
    best_key: str
    fixed: bool  # the phase's best was fixed for the later phases
    distinct_results: int  # different (fitness, trades) outcomes: 1 means the phase's parameters did nothing


@dataclass(slots=True)
class SearchOutcome:
    scope: Scope
    results: list[dict[str, Any]] = field(default_factory=list)  # deterministic order: phase, then grid order
    phase_of: dict[str, int] = field(default_factory=dict)  # key -> first phase that evaluated it
    phases: list[PhaseSummary] = field(default_factory=list)
    fixed: Point = field(default_factory=dict)

    @property
    def ranked(self) -> list[dict[str, Any]]:
        unique = {r["key"]: r for r in self.results}
        return sorted(unique.values(), key=rank_key)

    @property
    def winner(self) -> dict[str, Any] | None:
        ranked = self.ranked
        return ranked[0] if ranked else None


class PhaseProgress:
    """One line per phase on stderr: evaluations done, best so far, ETA."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, max(total, 1), enabled
        self.done = 0
        self.best = -math.inf
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.tty = sys.stderr.isatty()

    def update(self, result: dict[str, Any]) -> None:
        self.done += 1
        f = fitness_of(result)
        self.best = max(self.best, f)
        now = time.perf_counter()
        if self.enabled and (now - self._last > (0.5 if self.tty else 10.0)):
            self._last = now
            self._print(end="\r" if self.tty else "\n")

    def _print(self, end: str) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        best = "-" if self.best <= WORST_FITNESS else f"{self.best:.3f}"
        print(f"{self.label}: {self.done}/{self.total} evaluations, best fitness {best}, "
              f"{rate * 60:.0f}/min, ETA {int(eta) // 60}:{int(eta) % 60:02d}   ", end=end, file=sys.stderr,
              flush=True)

    def finish(self) -> None:
        if self.enabled:
            self._print(end="\n")


def _summary(phase: int, results: list[dict[str, Any]], seconds: float, fixed: bool) -> PhaseSummary:
    valid = [r for r in results if "invalid" not in r]
    eligible = sorted(fitness_of(r) for r in valid if not r["score"]["guard"])
    best = min(results, key=rank_key)["key"] if results else ""
    med = eligible[len(eligible) // 2] if eligible else None
    distinct = len({(r["score"]["raw_fitness"], r["score"]["trades"]) for r in valid})
    return PhaseSummary(phase, PHASE_NAMES.get(phase, str(phase)), len(results), len(valid), len(eligible),
                        eligible[-1] if eligible else None, eligible[0] if eligible else None, med,
                        (eligible[-1] - med) if eligible and med is not None else None, seconds, best, fixed,
                        distinct)


def search(ev: Evaluator, space: Space, scope: Scope, sampler: str = "grid", trials: int = 50, seed: int = 7,
           start: Point | None = None, show: bool = True, label: str = "") -> SearchOutcome:
    """Run the phases in order on ``scope``; the best point of each phase is fixed for the next."""
    out = SearchOutcome(scope)
    fixed: Point = dict(start or {})
    for n, phase in enumerate(space.phases, 1):
        grid = space.grid(phase)
        t0 = time.perf_counter()
        total = grid_size(grid) if sampler == "grid" else min(trials, grid_size(grid))
        prog = PhaseProgress(f"{label}phase {phase} ({n}/{len(space.phases)}, {PHASE_NAMES[phase]})", total, show)
        if sampler == "grid":
            points = [{**fixed, **g} for g in grid_points(grid)]
            results = ev.evaluate("is", scope, points, prog.update)
        else:
            results = _tpe_phase(ev, scope, grid, fixed, total, seed * 100 + phase, prog.update)
        prog.finish()
        for r in results:
            out.phase_of.setdefault(r["key"], phase)
        out.results.extend(results)
        best = min(results, key=rank_key) if results else None
        take = best is not None and fitness_of(best) > WORST_FITNESS
        if take and best is not None:
            fixed = dict(best["point"])
        out.phases.append(_summary(phase, results, time.perf_counter() - t0, take))
    out.fixed = fixed
    return out


def _tpe_phase(ev: Evaluator, scope: Scope, grid: dict[str, tuple[Value, ...]], fixed: Point, n: int, seed: int,
               on_result: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    dists: dict[str, BaseDistribution] = {name: CategoricalDistribution(list(values))
                                          for name, values in grid.items()}
    results: list[dict[str, Any]] = []
    asked = 0
    while asked < n:
        batch = [study.ask(dists) for _ in range(min(TPE_BATCH, n - asked))]
        asked += len(batch)
        points = [{**fixed, **{k: t.params[k] for k in grid}} for t in batch]
        res = ev.evaluate("is", scope, points, on_result)
        for t, r in zip(batch, res, strict=True):
            study.tell(t, fitness_of(r))
        results.extend(res)
    return results
