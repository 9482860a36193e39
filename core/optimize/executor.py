"""Where evaluations run: in this process, in a pool of processes, or on Ray — one code path.

Every executor hands plain tasks (a dict: kind, scope, point) to ``Worker.run`` and yields
plain result dicts.  A worker loads the market of a scope once (``SharedData``: bars,
features per feature key, memoised chains and mark paths) and keeps it read-only for every
later task; nothing large is pickled per evaluation.  A task's result depends only on the
base config, the scope and the point, so results are identical whatever the number of
workers, the executor or the completion order (the search orders them by task id).

* ``serial`` — in-process (tests, the benchmark's reference).
* ``process`` — ``concurrent.futures.ProcessPoolExecutor`` over ``spawn``ed workers.
* ``ray`` — one Ray actor per worker; ``ray.init()`` joins ``--ray-address`` or ``RAY_ADDRESS``
  when given and starts a local Ray otherwise (the same code on a laptop and a cluster).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from core.config import AppConfig
from core.dto import ConfigError
from core.optimize.fast import SharedData, buy_hold_score, reference_outcome, run_fast, same_outcome, score_outcome
from core.optimize.space import apply_point

Task = dict[str, Any]
Result = dict[str, Any]


def scope_overrides(scope: dict[str, str]) -> dict[str, Any]:
    return {"backtest.start": scope["start"], "backtest.end": scope["end"]}


class Worker:
    """Evaluates tasks against a base config; holds each scope's market once."""

    def __init__(self, base: dict[str, Any], min_trades: int, max_scopes: int = 3) -> None:
        self.base = AppConfig.model_validate(base)
        self.min_trades = int(min_trades)
        self._scopes: OrderedDict[str, tuple[AppConfig, SharedData]] = OrderedDict()
        self._max_scopes = max_scopes

    def _scope(self, scope: dict[str, str]) -> tuple[AppConfig, SharedData]:
        key = f"{scope['start']}..{scope['end']}"
        hit = self._scopes.get(key)
        if hit is None:
            cfg = self.base.with_overrides(scope_overrides(scope))
            hit = (cfg, SharedData(cfg))
            self._scopes[key] = hit
            if len(self._scopes) > self._max_scopes:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(key)
        return hit

    def run(self, task: Task) -> Result:
        t0 = time.perf_counter()
        base, shared = self._scope(task["scope"])
        out: Result = {"id": task["id"], "kind": task["kind"], "key": task["key"], "scope": task["scope"]}
        try:
            cfg = apply_point(base, task["point"])
        except ConfigError as exc:
            out.update(invalid=str(exc), seconds=time.perf_counter() - t0)
            return out
        if task["kind"] == "buyhold":
            out.update(score=score_dict(buy_hold_score(cfg, shared)), seconds=time.perf_counter() - t0)
            return out
        fast = run_fast(cfg, shared)
        score = score_outcome(fast, cfg, self.min_trades)
        out.update(score=score_dict(score), bars_visited=fast.bars_visited)
        if task["kind"] == "verify":
            t1 = time.perf_counter()
            ref = reference_outcome(cfg, shared)
            out["reference_seconds"] = time.perf_counter() - t1
            out["fast_seconds"] = t1 - t0
            out["difference"] = same_outcome(fast, ref) if fast.path == "fast" else ""
            out["reference_score"] = score_dict(score_outcome(ref, cfg, self.min_trades))
        out["seconds"] = time.perf_counter() - t0
        out["pid"] = os.getpid()
        return out


def score_dict(s: Any) -> dict[str, Any]:
    return {"fitness": s.fitness, "raw_fitness": s.raw_fitness, "net": s.net, "max_dd": s.max_dd,
            "sharpe": s.sharpe, "trades": s.trades, "guard": s.guard, "days": list(s.days),
            "daily_ret": list(s.daily), "daily_pnl": list(s.daily_pnl), "path": s.path, "why": s.why}


# ---------------------------------------------------------------------------------------

_WORKER: Worker | None = None  # one per worker process, built by the pool's initializer


def _init_process(base: dict[str, Any], min_trades: int) -> None:
    global _WORKER
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _WORKER = Worker(base, min_trades)


def _run_in_process(task: Task) -> Result:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(task)


class SerialExecutor:
    name = "serial"

    def __init__(self, base: AppConfig, min_trades: int) -> None:
        self.worker = Worker(base.to_json_dict(), min_trades)
        self.workers = 1

    def map(self, tasks: Iterable[Task]) -> Iterator[Result]:
        for t in tasks:
            yield self.worker.run(t)

    def close(self) -> None:
        pass


class ProcessExecutor:
    name = "process"

    def __init__(self, base: AppConfig, min_trades: int, workers: int) -> None:
        self.workers = workers
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                        initializer=_init_process, initargs=(base.to_json_dict(), min_trades))

    def map(self, tasks: Iterable[Task]) -> Iterator[Result]:
        """Results as they complete; at most 2 x workers tasks in flight (bounded memory)."""
        pending: set[Future[Result]] = set()
        it = iter(tasks)
        limit = 2 * self.workers
        try:
            while True:
                while len(pending) < limit:
                    t = next(it, None)
                    if t is None:
                        break
                    pending.add(self.pool.submit(_run_in_process, t))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    name = "ray"

    def __init__(self, base: AppConfig, min_trades: int, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray: Ray is not installed; pip install 'quantor-mtfuzz[ray]' "
                              "or use --executor process") from None
        self.ray = ray
        self.workers = workers
        self._started = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "ERROR"}
            if address is None:
                kwargs["num_cpus"] = workers
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"--ray-address {address}: cannot join Ray ({str(exc).splitlines()[0]}); "
                                  "check the address or drop it to start a local Ray") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", workers))
        if 0 < cpus < workers:  # an actor per CPU: more would wait for a CPU that never frees
            print(f"note: --workers {workers} but the Ray cluster has {cpus} CPUs; using {cpus} workers",
                  file=sys.stderr)
            workers = self.workers = cpus
        remote: Any = ray.remote(num_cpus=1)(Worker)
        self.actors: list[Any] = [remote.remote(base.to_json_dict(), min_trades) for _ in range(workers)]

    def map(self, tasks: Iterable[Task]) -> Iterator[Result]:
        ray = self.ray
        free = list(self.actors)
        running: dict[Any, Any] = {}
        it = iter(tasks)
        try:
            while True:
                while free:
                    t = next(it, None)
                    if t is None:
                        break
                    a = free.pop()
                    running[a.run.remote(t)] = a
                if not running:
                    return
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    free.append(running.pop(ref))
                    yield ray.get(ref)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self._started:
            self.ray.shutdown()


def make_executor(kind: str, base: AppConfig, min_trades: int, workers: int, address: str | None = None) -> Any:
    if kind == "serial":
        return SerialExecutor(base, min_trades)
    if kind == "process":
        return ProcessExecutor(base, min_trades, workers)
    if kind == "ray":
        return RayExecutor(base, min_trades, workers, address)
    raise ConfigError(f"--executor {kind}: choose process or ray")
