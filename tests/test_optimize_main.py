"""``core/main.py`` wiring of the optimizer: --mode optimize, the --use-optimizer alias, its options."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import core.main as main_mod


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    seen: list[tuple[Any, Any]] = []

    def fake(cfg: Any, ns: Any) -> int:
        seen.append((cfg, ns))
        return 0

    monkeypatch.setattr("core.optimize.cli.run_optimize", fake)
    return seen


def test_options_reach_the_typed_config(calls: list[tuple[Any, Any]]) -> None:
    argv = ["--mode", "optimize", "--phases", "3,1", "--sampler", "tpe", "--trials", "5", "--workers", "2",
            "--executor", "ray", "--ray-address", "10.0.0.1:6379", "--min-trades", "7", "--oos-start", "2018-01-02",
            "--oos-end", "2018-12-31", "--walk-forward", "2", "--verify", "3"]
    assert main_mod.main(argv) == 0
    opt = calls[-1][0].optimizer
    assert opt.phases == (1, 3) and opt.sampler == "tpe" and opt.trials == 5 and opt.workers == 2
    assert opt.executor == "ray" and opt.ray_address == "10.0.0.1:6379" and opt.min_trades == 7
    assert (opt.oos_start, opt.oos_end) == (dt.date(2018, 1, 2), dt.date(2018, 12, 31))
    assert opt.walk_forward == 2 and opt.verify == 3


def test_the_seed_spelling_and_resume(calls: list[tuple[Any, Any]]) -> None:
    assert main_mod.main(["--mode", "backtest", "--use-optimizer", "--phases", "1"]) == 0
    assert calls[-1][0].optimizer.phases == (1,)
    assert main_mod.main(["--mode", "optimize", "--resume", "reports/opt-x"]) == 0
    assert calls[-1][1].resume == "reports/opt-x"


@pytest.mark.parametrize("argv", [
    ["--mode", "optimize", "--sampler", "random"],
    ["--mode", "optimize", "--phases", "1,x"],
    ["--mode", "optimize", "--phases", "7"],
    ["--mode", "optimize", "--workers", "0"],
    ["--mode", "optimize", "--executor", "threads"],
    ["--mode", "optimize", "--min-trades", "-1"],
    ["--mode", "optimize", "--oos-start", "2018-06-01", "--oos-end", "2018-01-01"],
    ["--mode", "optimize", "--resume"],
    ["--mode", "data", "--use-optimizer"],
    ["--mode", "train", "--resume", "somewhere"],
])
def test_bad_optimizer_options_exit_2_with_one_line(argv: list[str], calls: list[tuple[Any, Any]],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main_mod.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not calls
