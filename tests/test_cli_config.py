"""Command line and config: one-line errors with exit code 2, precedence, template, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import AppConfig, ConfigError, build_config, read_config_file
from core.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--delta-low", "0.3", "--delta-high", "0.2"], "--delta-low 0.3 must be <= --delta-high 0.2"),
        (["--dte-min", "50", "--dte-max", "40"], "--dte-min 50 must be <= --dte-max 40"),
        (["--wing-min", "0"], "--wing-min 0.0"),
        (["--wing-min", "-5"], "--wing-min -5.0"),
        (["--wing-min", "12", "--wing-max", "10"], "--wing-min 12.0 must be <= --wing-max 10.0"),
        (["--bt-start", "2018-06-01", "--bt-end", "2018-01-01"], "--bt-start 2018-06-01 must be before"),
        (["--bt-start", "2030-01-02", "--bt-end", "2030-02-01"], "outside the embedded data"),
        (["--quantity", "two"], "--quantity 'two': not a valid whole number"),
        (["--profit-pct", "1.5"], "--profit-pct 1.5"),
        (["--mtf-timeframes", "1,7"], "timeframes [7]"),
        (["--data-source", "nowhere"], "--data-source 'nowhere'"),
    ],
)
def test_bad_values_exit_2_with_one_line(argv, fragment, capsys):
    assert main(["--mode", "backtest", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fragment in err


def test_config_file_unknown_key_and_weights(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy]\ndelta_lo = 0.1\n")
    assert main(["--config", str(bad)]) == 2
    assert "unknown config key 'strategy.delta_lo'" in capsys.readouterr().err
    weights = tmp_path / "w.yaml"
    weights.write_text("fuzzy:\n  weights: {mtf: 0.5, iv_rank: 0.14, vix: 0.11, rsi: 0.10, adx: 0.10, "
                       "bollinger: 0.09, stochastic: 0.08, psar: 0.07, volume: 0.07, sma_distance: 0.06}\n")
    assert main(["--config", str(weights)]) == 2
    assert "must sum to 1" in capsys.readouterr().err
    missing = tmp_path / "none.toml"
    assert main(["--config", str(missing)]) == 2
    assert "file not found" in capsys.readouterr().err


def test_precedence_cli_over_file_over_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[strategy]\ndte_min = 20\ndte_max = 40\n[exits]\nprofit_pct = 0.6\n")
    cfg = build_config(read_config_file(str(f)), {"strategy.dte_min": 25})
    assert (cfg.strategy.dte_min, cfg.strategy.dte_max, cfg.exits.profit_pct) == (25, 40, 0.6)
    assert cfg.strategy.wing_min == 5.0  # default untouched
    assert json.loads(json.dumps(cfg.to_json_dict()))["strategy"]["dte_min"] == 25


def test_template_writes_the_defaults(tmp_path):
    out = tmp_path / "t.toml"
    subprocess.run([sys.executable, str(ROOT / "config.template.py"), "--write", str(out)], check=True)
    assert build_config(read_config_file(str(out))) == AppConfig()
    text = out.read_text()
    assert "delta_low = 0.1" in text and "> 0.0, < 0.5" in text


def test_frozen_and_with_overrides():
    cfg = AppConfig()
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydantic raises ValidationError on frozen assignment
        cfg.strategy.dte_min = 3  # type: ignore[misc]
    assert cfg.with_overrides({"exits.max_hold_days": 21}).exits.max_hold_days == 21
    with pytest.raises(ConfigError):
        cfg.with_overrides({"exits.max_hold_days": 0})


def test_backtest_end_to_end_on_embedded_default(tmp_path):
    """`python core/main.py --mode backtest` writes every output and trades (2018 default)."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "core" / "main.py"), "--mode", "backtest", "--no-progress",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for name in ("trades.csv", "equity.csv", "greeks.csv", "decisions.log", "metrics.json",
                 "baseline_metrics.json", "run.json", "equity.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trades"] > 0
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["intraday_synthetic"] is True
    assert run["data"]["range"] == ["2018-01-01", "2018-12-31"]


def test_same_command_twice_is_byte_identical(tmp_path):
    args = ["--mode", "backtest", "--no-progress", "--no-plot", "--bt-start", "2017-03-01", "--bt-end",
            "2017-05-31"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("trades.csv", "metrics.json", "equity.csv", "decisions.log"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_data_mode_commands(tmp_path, capsys):
    assert main(["--mode", "data", "describe"]) == 0
    assert "VIX proxy until" in capsys.readouterr().out
    assert main(["--mode", "data", "chain", "--date", "2018-03-01", "--dte-min", "30", "--dte-max", "40",
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("expiration,dte,strike,option_type,bid,ask,mid")
    assert len(lines) > 100
    assert main(["--mode", "data", "bars", "--date", "2018-07-03", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 42  # early close: 42 five-minute bars
    assert main(["--mode", "data", "chain"]) == 2
    assert "needs --date" in capsys.readouterr().err
    out = tmp_path / "exp"
    assert main(["--mode", "data", "export", "--start", "2018-03-01", "--end", "2018-03-02", "--out", str(out)]) == 0
    assert (out / "manifest.json").is_file()


def test_report_mode_needs_a_run_folder(capsys):
    assert main(["--mode", "report"]) == 2
    assert "--run" in capsys.readouterr().err


def test_synthetic_source_runs_the_same_backtest(tmp_path):
    out = tmp_path / "syn"
    assert main(["--mode", "backtest", "--data-source", "synthetic", "--bt-start", "2018-03-01", "--bt-end",
                 "2018-05-31", "--no-progress", "--no-plot", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["name"] == "synthetic"
    assert json.loads((out / "metrics.json").read_text())["trades"] > 0
