"""``run_optimize`` end to end on a tiny grid: files, best.toml re-run, resume, Ctrl-C, bad options."""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import core.optimize.cli as cli
import core.optimize.space as space_mod
from core.backtest.run import run_backtest
from core.config import AppConfig, build_config, read_config_file
from core.dto import ConfigError
from core.optimize.fast import RunOutcome, score_outcome

TINY = {1: {"exits.profit_pct": (0.5, 0.7), "exits.max_hold_days": (10, 21)},
        2: {"strategy.delta_low": (0.10, 0.15)}}


def _args(**kw: Any) -> types.SimpleNamespace:
    base = dict(sampler="grid", trials=None, phases="1,2", workers=1, executor="serial", ray_address=None,
                min_trades=3, oos_start="2018-04-02", oos_end="2018-06-29", walk_forward=None, verify=3,
                resume=None, force=False)
    base.update(kw)
    return types.SimpleNamespace(**base)


def _cfg(out: Path) -> AppConfig:
    return AppConfig().with_overrides({"run.progress": False, "run.out": str(out), "backtest.start": "2018-01-02",
                                       "backtest.end": "2018-03-30"})


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    for phase, grid in TINY.items():
        monkeypatch.setitem(space_mod.DEFAULT_GRIDS, phase, grid)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    for phase, grid in TINY.items():
        mp.setitem(space_mod.DEFAULT_GRIDS, phase, grid)
    out = tmp_path_factory.mktemp("opt") / "run"
    try:
        assert cli.run_optimize(_cfg(out), _args()) == 0
    finally:
        mp.undo()
    return out


def test_outputs(finished: Path) -> None:
    for name in ("top100.csv", "best.toml", "phases.csv", "journal.jsonl", "returns.parquet", "oos.json",
                 "overfitting.json", "report.pdf", "run.json", "evaluations.csv", ".quantor-run"):
        assert (finished / name).is_file(), name
    rows = list(csv.DictReader((finished / "top100.csv").open()))
    assert len(rows) == 6 and rows[0]["rank"] == "1"
    assert {"exits.profit_pct", "fitness", "net", "max_dd", "sharpe", "trades", "phase"} <= set(rows[0])
    phases = list(csv.DictReader((finished / "phases.csv").open()))
    assert [p["phase"] for p in phases] == ["1", "2"]
    run = json.loads((finished / "run.json").read_text())
    assert run["status"] == "done" and run["verification"]["checked"] == 3
    assert run["verification"]["mismatches"] == []
    oos = json.loads((finished / "oos.json").read_text())
    assert oos["out_of_sample"]["start"] == "2018-04-02" and "net" in oos["buy_and_hold"]["out_of_sample"]
    over = json.loads((finished / "overfitting.json").read_text())
    assert 0.0 <= over["pbo"] <= 1.0 and 0.0 <= over["dsr"]["dsr"] <= 1.0
    frame = pd.read_parquet(finished / "returns.parquet")
    assert frame.shape[1] == 6 and len(frame) > 50
    lines = (finished / "journal.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["journal"] == 1 and len(lines) > 6


def test_best_toml_rerun_reproduces_the_reported_fitness(finished: Path) -> None:
    top = next(csv.DictReader((finished / "top100.csv").open()))
    cfg = build_config(read_config_file(str(finished / "best.toml")), {"run.progress": False})
    res = run_backtest(cfg, progress=False)
    score = score_outcome(RunOutcome(res.driver, res.inputs.first_bar, "reference"), cfg, 0)
    assert score.raw_fitness == pytest.approx(float(top["raw_fitness"]), abs=1e-9)
    assert score.trades == int(top["trades"])


def test_resume_reuses_the_journal(finished: Path, tiny: None, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    assert cli.run_optimize(_cfg(tmp_path / "unused"), _args(resume=str(copy))) == 0
    run = json.loads((copy / "run.json").read_text())
    assert run["evaluations_run"] == 0 and run["evaluations_reused"] > 0
    assert (copy / "top100.csv").read_text() == (finished / "top100.csv").read_text()
    # options that would change results come from the resumed run, not from this command
    assert cli.run_optimize(_cfg(tmp_path / "unused"), _args(resume=str(copy), min_trades=5, sampler="tpe")) == 0
    assert (copy / "top100.csv").read_text() == (finished / "top100.csv").read_text()
    with pytest.raises(ConfigError, match="run.json"):
        cli.run_optimize(_cfg(tmp_path / "unused"), _args(resume=str(tmp_path)))


def test_existing_folder_needs_force(finished: Path, tiny: None) -> None:
    with pytest.raises(ConfigError, match="--force"):
        cli.run_optimize(_cfg(finished), _args())


def test_ctrl_c_exits_130_with_the_journal_intact(tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    real = cli.make_executor

    class Killed:
        name, workers = "serial", 1

        def __init__(self, *a: Any) -> None:
            self.inner = real(*a)

        def map(self, tasks: Any) -> Any:
            for k, r in enumerate(self.inner.map(tasks)):
                if k == 2:
                    raise KeyboardInterrupt
                yield r

        def close(self) -> None:
            pass

    monkeypatch.setattr(cli, "make_executor", Killed)
    out = tmp_path / "killed"
    assert cli.run_optimize(_cfg(out), _args()) == 130
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2
    monkeypatch.setattr(cli, "make_executor", real)
    with pytest.raises(ConfigError, match="--resume"):
        cli.run_optimize(_cfg(out), _args(force=True))  # an unfinished run is resumed, never overwritten
    assert cli.run_optimize(_cfg(tmp_path / "x"), _args(resume=str(out))) == 0


@pytest.mark.parametrize(("kw", "match"), [
    ({"sampler": "random"}, "--sampler"),
    ({"phases": "1,9"}, "--phases"),
    ({"phases": "one"}, "--phases"),
    ({"workers": 0}, "--workers"),
    ({"executor": "threads"}, "--executor"),
    ({"oos_start": "2018-02-01", "oos_end": "2018-06-29"}, "overlaps"),
    ({"oos_start": "2030-01-01"}, "outside the data"),
    ({"trials": 0}, "--trials"),
])
def test_bad_options_are_one_line_errors(kw: dict[str, Any], match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        cli.run_optimize(_cfg(tmp_path / "o"), _args(**kw))
    assert "\n" not in str(err.value)


def test_default_ranges_hold_out_six_months() -> None:
    import datetime as dt

    cfg = AppConfig()
    opts = cli.resolve_options(cfg, None, dt.date(1999, 1, 4), dt.date(2018, 12, 31))
    assert (opts.is_start, opts.is_end) == (dt.date(2017, 1, 1), dt.date(2017, 12, 31))
    assert (opts.oos_start, opts.oos_end) == (dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    late = cfg.with_overrides({"backtest.start": "2018-01-02", "backtest.end": "2018-10-31"})
    with pytest.raises(ConfigError, match="six months"):
        cli.resolve_options(late, None, dt.date(1999, 1, 4), dt.date(2018, 12, 31))


def test_walk_forward_folds_are_anchored_and_purged() -> None:
    import datetime as dt

    folds = cli.walk_forward_folds(dt.date(2017, 1, 1), dt.date(2017, 12, 31), 3, 30)
    assert len(folds) == 3
    for train, test in folds:
        assert train["start"] == "2017-01-01"
        gap = dt.date.fromisoformat(test["start"]) - dt.date.fromisoformat(train["end"])
        assert gap.days == 31
    assert folds[-1][1]["end"] == "2017-12-31"
    with pytest.raises(ConfigError, match="walk-forward"):
        cli.walk_forward_folds(dt.date(2017, 1, 1), dt.date(2017, 3, 1), 5, 30)
    rolling = cli.walk_forward_folds(dt.date(2017, 1, 1), dt.date(2017, 12, 31), 3, 30, "rolling")
    assert [f[0]["start"] for f in rolling] == ["2017-01-01", "2017-04-02", "2017-07-02"]
    assert [f[1] for f in rolling] == [f[1] for f in folds]


def test_walk_forward_runs_every_fold_out_of_sample(tiny: None, tmp_path: Path) -> None:
    cfg = AppConfig().with_overrides({"run.progress": False, "run.out": str(tmp_path / "wf"),
                                      "backtest.start": "2018-01-02", "backtest.end": "2018-06-29"})
    assert cli.run_optimize(cfg, _args(phases="1", walk_forward=2, verify=0, min_trades=1,
                                       oos_start="2018-07-02", oos_end="2018-09-28")) == 0
    oos = json.loads((tmp_path / "wf" / "oos.json").read_text())
    folds = oos["walk_forward"]
    assert [f["fold"] for f in folds] == [1, 2]
    for f in folds:
        assert f["train"]["start"] == "2018-01-02" and f["test"]["start"] > f["train"]["end"]
        assert f["params"] and "net" in f["test_result"]


KILL_SCRIPT = """
import sys, types
import core.optimize.space as sp
from core.config import AppConfig
from core.optimize.cli import run_optimize
sp.DEFAULT_GRIDS[1] = {"exits.profit_pct": (0.5, 0.7), "exits.max_hold_days": (10, 21)}
sp.DEFAULT_GRIDS[2] = {"strategy.delta_low": (0.10, 0.15)}
cfg = AppConfig().with_overrides({"run.progress": False, "run.out": sys.argv[1], "backtest.start": "2018-01-02",
                                  "backtest.end": "2018-03-30"})
args = types.SimpleNamespace(phases="1,2", workers=1, executor="serial", min_trades=3, oos_start="2018-04-02",
                             oos_end="2018-06-29", verify=3)
run_optimize(cfg, args)
"""


def test_resume_after_sigkill_gives_the_uninterrupted_results(finished: Path, tiny: None, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    journal = out / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.wait()
    assert journal.is_file()
    finished_lines = len(journal.read_text().splitlines())
    assert finished_lines >= 3
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # killed mid-run
    assert cli.run_optimize(_cfg(tmp_path / "unused"), _args(resume=str(out))) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["evaluations_reused"] >= 2
    assert (out / "top100.csv").read_text() == (finished / "top100.csv").read_text()


def test_tpe_sampler_end_to_end(tiny: None, tmp_path: Path) -> None:
    out = tmp_path / "tpe"
    assert cli.run_optimize(_cfg(out), _args(sampler="tpe", trials=3, phases="1", verify=1)) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["sampler"] == "tpe" and run["phases"][0]["evaluations"] == 3
    assert run["evaluated_sets"] <= 3


def test_a_phase_that_changes_nothing_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(space_mod.DEFAULT_GRIDS, 6, {"fuzzy.weights.mtf": (0.1, 0.25)})
    out = tmp_path / "noop"
    assert cli.run_optimize(_cfg(out), _args(phases="6", verify=0, min_trades=1)) == 0
    run = json.loads((out / "run.json").read_text())
    assert any("phase 6" in n and "same result" in n for n in run["notes"])
    assert run["phases"][0]["distinct_results"] == 1


def test_grids_from_the_config_and_resume(tmp_path: Path) -> None:
    """The [optimizer] section of the typed config: phases and nested grid tables, kept by --resume."""
    out = tmp_path / "grids"
    cfg = _cfg(out).with_overrides({"optimizer.phases": [1],
                                    "optimizer.grids": {"1": {"exits": {"profit_pct": [0.5, 0.7]}}}})
    assert cli.run_optimize(cfg, _args(phases=None, verify=0)) == 0
    rows = list(csv.DictReader((out / "top100.csv").open()))
    assert sorted(r["exits.profit_pct"] for r in rows) == ["0.5", "0.7"]
    assert cli.run_optimize(_cfg(tmp_path / "unused"), _args(resume=str(out))) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["evaluations_run"] == 0 and run["evaluations_reused"] >= 2
