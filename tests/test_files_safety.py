"""No mode ever deletes or overwrites what it did not create (issue 12 item 1).

The one output rule (``core.outputs.atomic``): absent or empty target -> written; a previous run
of this tool (marker ``.quantor-run``) -> replaced only with ``force``, and only when it holds
nothing but that run's files; anything else -> refused, exit 2, nothing touched.  Outputs are
written whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from core.dto import ConfigError
from core.main import main
from core.outputs.atomic import RUN_MARKER, add_to_marker, atomic_dir, check_target, is_previous_run

SHORT = ["--bt-start", "2018-03-01", "--bt-end", "2018-03-09", "--no-progress", "--no-plot"]


def _write_run(target: Path, text: str, force: bool = False) -> None:
    with atomic_dir(target, force) as tmp:
        (tmp / "run.json").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "equity.csv").write_text("t,equity\n")


def test_new_and_empty_targets_are_written_with_the_marker(tmp_path: Path) -> None:
    _write_run(tmp_path / "new" / "deeper", "{}")
    (tmp_path / "empty").mkdir()
    _write_run(tmp_path / "empty", "{}")
    for folder in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        assert is_previous_run(folder)
        marker = json.loads((folder / RUN_MARKER).read_text())
        assert marker["files"] == ["run.json", "sub/equity.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]  # no temporary folder left


def test_previous_run_is_replaced_only_with_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _write_run(target, "first")
    with pytest.raises(ConfigError, match="holds a previous run; add --force"):
        _write_run(target, "second")
    assert (target / "run.json").read_text() == "first"
    _write_run(target, "second", force=True)
    assert (target / "run.json").read_text() == "second"
    (target / "my notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="also holds 'my notes.txt'"):
        _write_run(target, "third", force=True)
    assert (target / "my notes.txt").read_text() == "mine"
    assert (target / "run.json").read_text() == "second"


@pytest.mark.parametrize("setup", ["user-file", "file-target", "cwd", "parent-of-cwd"])
def test_refusals_touch_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.docx").write_text("years of work")
    monkeypatch.chdir(work)
    target = {"user-file": work, "file-target": work / "thesis.docx", "cwd": Path("."), "parent-of-cwd": Path("..")}
    with pytest.raises(ConfigError, match="^--out "):
        _write_run(target[setup], "{}", force=True)  # even --force never removes a user's file
    assert (work / "thesis.docx").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["thesis.docx", "work"]


def test_files_added_later_by_the_tool_are_its_own(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _write_run(target, "first")
    (target / "report.pdf").write_bytes(b"%PDF")  # --mode report rebuilds the PDF inside the run folder
    add_to_marker(target, target / "report.pdf")
    _write_run(target, "second", force=True)
    assert not (target / "report.pdf").exists()
    assert (target / "run.json").read_text() == "second"


def test_a_failure_writes_nothing_and_keeps_the_previous_run(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _write_run(target, "first")

    def fail_half_way() -> None:
        with atomic_dir(target, force=True) as tmp:
            (tmp / "run.json").write_text("half")
            raise RuntimeError("feed dropped")

    with pytest.raises(RuntimeError, match="feed dropped"):
        fail_half_way()
    assert (target / "run.json").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_os_error_while_writing_is_one_line(tmp_path: Path) -> None:
    def write_into_a_missing_folder() -> None:
        with atomic_dir(tmp_path / "run") as tmp:
            (tmp / "missing-folder" / "x.csv").write_text("no such folder")

    with pytest.raises(ConfigError, match=r"^--out .*: writing failed \(.*\); nothing was written$"):
        write_into_a_missing_folder()
    assert list(tmp_path.iterdir()) == []


def test_check_target_before_a_long_run(tmp_path: Path) -> None:
    assert check_target(tmp_path / "fresh") == (tmp_path / "fresh").resolve()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_target(tmp_path / "f" / "run")


@pytest.mark.parametrize("argv", [
    pytest.param(["--mode", "backtest", *SHORT], id="backtest"),
    pytest.param(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05"], id="data-export"),
    pytest.param(["--mode", "benchmark"], id="benchmark"),  # refused before any timing starts
])
def test_user_file_in_out_folder_survives_every_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     argv: list[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "did not write" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.docx"]
    assert (out / "thesis.docx").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_benchmark_writes_into_its_out_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import core.bench.run as bench

    def fake(cfg, out=None, warn=None):  # the timings themselves are not this test's business
        out.write_text(json.dumps({"workloads": []}))
        return {"workloads": [], "machine": {"load_average_before": [0, 0, 0], "load_average_after": [0, 0, 0],
                                             "cpu_count": 2, "threads": {}, "busy": False},
                "missed_targets": [], "peak_memory_mib_after_backtests": 1.0, "peak_memory_mib": 1.0,
                "path": str(out)}

    monkeypatch.setattr(bench, "run_benchmark", fake)
    out = tmp_path / "bench"
    assert main(["--mode", "benchmark", "--out", str(out)]) == 0
    assert is_previous_run(out) and json.loads((out / "benchmark.json").read_text()) == {"workloads": []}
    assert str(out / "benchmark.json") in capsys.readouterr().out.replace("\n", "")
    assert main(["--mode", "benchmark", "--out", str(out)]) == 2  # a previous run: only with --force
    assert main(["--mode", "benchmark", "--out", str(out), "--force"]) == 0


def test_train_never_overwrites_a_checkpoint(tmp_path: Path) -> None:
    from core.modes.train import training_target

    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already exists; add --force"):
        training_target(str(mine), seed=7)
    assert training_target(str(mine), seed=7, force=True) == mine
    fresh = training_target(None, seed=7)
    assert fresh.parent.name == "runs" and fresh.parent.parent.name == "models" and not fresh.exists()
    assert fresh.suffix == ".pth"
    with pytest.raises(ConfigError, match="--resume needs --model"):
        training_target(None, seed=7, resume=True)
    assert mine.read_bytes() == b"precious"


def test_shipped_checkpoint_resolves_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.modes.train import PACKAGE_ROOT, SHIPPED_CHECKPOINT, load_checkpoint, resolve_model_path

    monkeypatch.chdir(tmp_path)
    assert resolve_model_path(SHIPPED_CHECKPOINT) == PACKAGE_ROOT / SHIPPED_CHECKPOINT
    assert resolve_model_path(SHIPPED_CHECKPOINT).is_file()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match=r"^--model junk\.pth: not a forecaster checkpoint"):
        load_checkpoint("junk.pth")


def test_train_refuses_before_training(tmp_path: Path) -> None:
    from core.modes.train import train_forecaster
    from intelligence.forecaster.train import TrainParams

    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already exists"):
        train_forecaster(TrainParams(out=str(mine), epochs=1, tensorboard_dir="", start=dt.date(2010, 1, 1)),
                         progress=False)
    assert mine.read_bytes() == b"precious"
