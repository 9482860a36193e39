"""Six-phase search: same results for any executor and worker count, journal and resume, TPE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.config import AppConfig
from core.optimize.executor import make_executor
from core.optimize.journal import Journal, read_journal
from core.optimize.search import Evaluator, Interrupted, search
from core.optimize.space import DEFAULT_GRIDS, apply_point, build_space, grid_size, overrides_of, point_key

SCOPE = {"start": "2018-01-02", "end": "2018-03-30"}
GRIDS = {1: {"exits.profit_pct": [0.5, 0.7], "exits.max_hold_days": [10, 21]},
         2: {"strategy.delta_low": [0.10, 0.15]}}


@pytest.fixture(scope="module")
def base() -> AppConfig:
    return AppConfig().with_overrides({"run.progress": False})


def _summary(outcome: Any) -> list[tuple[Any, ...]]:
    return [(r["key"], r["score"]["fitness"], r["score"]["trades"], tuple(r["score"]["daily_pnl"]))
            for r in outcome.ranked]


@pytest.fixture(scope="module")
def serial_result(base: AppConfig) -> Any:
    ex = make_executor("serial", base, 3, 1)
    return search(Evaluator(ex, None), build_space(base, [1, 2], GRIDS), SCOPE, show=False)


def test_spec_grids_and_space(base: AppConfig) -> None:
    sizes = {p: grid_size(g) for p, g in DEFAULT_GRIDS.items()}
    assert sizes == {1: 360, 2: 108, 3: 108, 4: 96, 5: 96, 6: 729}
    space = build_space(base, [3, 1])
    assert space.phases == (1, 3) and space.total == 468
    ov = overrides_of(base, {"fuzzy.weights.mtf": 0.25, "fuzzy.weights.rsi": 0.15, "exits.profit_pct": 0.6})
    assert sum(ov["fuzzy.weights"].values()) == pytest.approx(1.0)
    cfg = apply_point(base, {"fuzzy.weights.mtf": 0.25, "fuzzy.weights.rsi": 0.15})
    assert cfg.fuzzy.weights["mtf"] > base.fuzzy.weights["mtf"]
    assert point_key({"b": 1, "a": 2}) == point_key({"a": 2, "b": 1})


def test_grids_from_a_toml_file(base: AppConfig, tmp_path: Any) -> None:
    import tomllib

    text = '[optimizer.grids.1]\nexits.profit_pct = [0.5, 0.6]\n"risk.max_account_risk_per_trade" = [0.01]\n' \
           '[optimizer.grids.6]\nfuzzy.weights.mtf = [0.1, 0.2]\n'
    grids = tomllib.loads(text)["optimizer"]["grids"]
    space = build_space(base, [1, 6], grids)
    assert space.grid(1) == {"exits.profit_pct": (0.5, 0.6), "risk.max_account_risk_per_trade": (0.01,)}
    assert space.grid(6) == {"fuzzy.weights.mtf": (0.1, 0.2)}


def test_bad_grids_are_one_line_config_errors(base: AppConfig) -> None:
    from core.dto import ConfigError

    with pytest.raises(ConfigError, match="not a config key"):
        build_space(base, [1], {1: {"exits.nope": [1]}})
    with pytest.raises(ConfigError, match="phase"):
        build_space(base, [7])
    with pytest.raises(ConfigError, match="unknown fuzzy weight"):
        build_space(base, [6], {6: {"fuzzy.weights.moon": [0.1]}})


def test_phases_fix_the_earlier_best(serial_result: Any) -> None:
    p1, p2 = serial_result.phases
    assert p1.evaluations == 4 and p2.evaluations == 2
    best1 = json.loads(p1.best_key)
    for r in serial_result.results[4:]:
        assert {k: r["point"][k] for k in best1} == best1  # phase 2 ran with phase 1's best fixed
    ranked = serial_result.ranked
    assert [r["score"]["fitness"] for r in ranked] == sorted((r["score"]["fitness"] for r in ranked), reverse=True)


def test_two_processes_give_the_serial_results(base: AppConfig, serial_result: Any) -> None:
    ex = make_executor("process", base, 3, 2)
    try:
        out = search(Evaluator(ex, None), build_space(base, [1, 2], GRIDS), SCOPE, show=False)
    finally:
        ex.close()
    assert _summary(out) == _summary(serial_result)
    assert all(r["pid"] != __import__("os").getpid() for r in out.results)  # evaluated in the worker processes


def test_ray_gives_the_serial_results(base: AppConfig, serial_result: Any) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ex = make_executor("ray", base, 3, 2)
        out = search(Evaluator(ex, None), build_space(base, [1, 2], GRIDS), SCOPE, show=False)
        ex.close()
    finally:
        ray.shutdown()
    assert _summary(out) == _summary(serial_result)


class _Killed:
    """An executor that dies (KeyboardInterrupt) after ``n`` results."""

    name, workers = "serial", 1

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n = inner, n

    def map(self, tasks: Any) -> Any:
        for k, r in enumerate(self.inner.map(tasks)):
            if k == self.n:
                raise KeyboardInterrupt
            yield r


def test_journal_resume_after_a_kill(base: AppConfig, serial_result: Any, tmp_path: Path) -> None:
    space = build_space(base, [1, 2], GRIDS)
    opts = {"grids": {str(k): v for k, v in GRIDS.items()}, "scope": SCOPE}
    ex = make_executor("serial", base, 3, 1)
    journal = Journal(tmp_path, opts, resume=False)
    with pytest.raises(Interrupted):
        search(Evaluator(_Killed(ex, 3), journal), space, SCOPE, show=False)
    journal.close()
    with (tmp_path / "journal.jsonl").open("a") as fh:
        fh.write('{"kind": "is", "sco')  # killed in the middle of writing a line
    done = read_journal(tmp_path, opts)
    assert len(done) == 3
    journal = Journal(tmp_path, opts, resume=True)
    ev = Evaluator(ex, journal, done)
    out = search(ev, space, SCOPE, show=False)
    journal.close()
    assert ev.evaluated == 6 - 3 and ev.reused == 3
    assert _summary(out) == _summary(serial_result)
    assert len(read_journal(tmp_path, opts)) == 6
    from core.dto import ConfigError

    with pytest.raises(ConfigError, match="different options"):
        read_journal(tmp_path, {**opts, "scope": {"start": "2018-01-02", "end": "2018-02-28"}})


def test_tpe_is_deterministic_and_never_evaluates_a_point_twice(base: AppConfig) -> None:
    space = build_space(base, [1], {1: {"exits.profit_pct": [0.5, 0.6, 0.7, 0.8],
                                        "exits.loss_multiple": [1.0, 2.0, 3.0]}})
    runs = []
    for _ in range(2):
        ex = make_executor("serial", base, 3, 1)
        ev = Evaluator(ex, None)
        out = search(ev, space, {"start": "2018-01-02", "end": "2018-02-28"}, sampler="tpe", trials=8, seed=3,
                     show=False)
        runs.append(([r["key"] for r in out.results], _summary(out)))
        assert ev.evaluated == len({r["key"] for r in out.results})
        assert len(out.results) == 8
    assert runs[0] == runs[1]
