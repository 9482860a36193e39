"""Every bad option or config file ends in exit 2 and one stderr line naming the place; help and
the end-of-run console explain themselves (issue 12, deliverables 2, 6 and 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import build_config
from core.main import main

SHORT = ["--no-progress", "--no-plot", "--bt-start", "2018-02-01", "--bt-end", "2018-02-28"]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--dte-mn", "30"], ["unknown option --dte-mn", "did you mean --dte-min?"]),
        (["--start", "2017-01-01"], ["--start is only for --mode data / train", "use --bt-start"]),
        (["--mode", "stress", "--epochs", "3"], ["--epochs is only for --mode train, not --mode stress"]),
        (["--date", "2018-03-01"], ["--date is only for --mode data, not --mode backtest"]),
        (["--wing-minn=3"], ["unknown option --wing-minn=3", "did you mean --wing-min?"]),
        (["--mode", "bactest"], ["argument --mode: invalid choice: 'bactest'", "did you mean backtest?"]),
        (["--format", "xml", "--mode", "data"], ["argument --format", "'xml'"]),
        (["--dte-min"], ["argument --dte-min: expected one argument"]),
        (["--mode", "backtest", "describe"], ["unexpected argument 'describe'", "only for --mode data"]),
        (["--mode", "data", "chian"], ["--mode data 'chian'", "did you mean chain?"]),
        (["--mtf-timeframes", "1,abc"], ["--mtf-timeframes '1,abc': not a valid comma-separated list of whole"]),
        (["--bt-cash", "lots"], ["--bt-cash 'lots': not a valid number"]),
        (["--seed", "1.5"], ["--seed '1.5': not a valid whole number"]),
        (["--entry-time", "03:00"], ["--entry-time 03:00 is outside the session", "09:35 to 16:00"]),
        (["--entry-time", "16:30"], ["--entry-time 16:30 is outside the session"]),
        (["--entry-time", "10:03"], ["--entry-time 10:03 is not a bar close"]),
        (["--entry-time", "25:00"], ["--entry-time '25:00'"]),
        (["--no-fuzzy", "--dynamic-sizing"], ["--dynamic-sizing", "drop --no-fuzzy"]),
        (["--fill-model", "best"], ["--fill-model 'best'", "'mid', 'fraction' or 'cross'"]),
        (["--structure", "butterfly"], ["--structure 'butterfly'"]),
        (["--use-neural", "--model", "README.md"], ["--model README.md: not a forecaster checkpoint"]),
        (["--use-neural", "--model", "no/such.pth"], ["--model no/such.pth: checkpoint not found"]),
        (["--config", "no/such.toml"], ["--config no/such.toml: file not found"]),
        (["--config", "tests"], ["--config tests: is a folder"]),
        (["--config", "README.md"], ["--config README.md: unknown extension '.md'"]),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, fragments, capsys, tmp_path):
    out = tmp_path / "never"
    code, stdout, err = _run([*argv, "--out", str(out)], capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "internal error" not in err and "usage:" not in err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()  # nothing written


CONFIG_CASES = [
    # (file name, content, fragments) — the file and the key are named, never a flag the user did not type
    ("cash.toml", '[backtest]\ncash = "lots"\n', ["config file {f}, key [backtest] cash = 'lots'", "valid number"]),
    ("dte.toml", "[strategy]\ndte_min = 50\n", ["config file {f} [strategy]: dte_min 50 must be <= dte_max 45"]),
    ("entry.yaml", "backtest:\n  entry_time: '03:00'\n", ["config file {f} [backtest]: entry_time 03:00 is outside"]),
    ("typo.toml", "[strategy]\ndelta_lo = 0.1\n", ["unknown config key 'strategy.delta_lo' in {f}",
                                                     "did you mean 'strategy.delta_low'?"]),
    ("section.toml", "[stratgy]\nwing_min = 5\n", ["unknown config key 'stratgy' in {f}", "did you mean 'strategy'?"]),
    ("scalar.toml", "strategy = 5\n", ["config file {f}: [strategy] must be a table of keys, got 5"]),
    ("range.toml", "[exits]\nprofit_pct = 1.5\n", ["config file {f}, key [exits] profit_pct = 1.5", "<= 1"]),
    ("broken.toml", "[strategy\n", ["--config {f}: not valid TOML"]),
    ("broken.yaml", "strategy: [1, 2\n", ["--config {f}: not valid YAML"]),
    ("list.yaml", "- 1\n- 2\n", ["--config {f}: top level must be a table"]),
    ("binary.toml", b"\x7fELF\x02\x01\x01\x00\x00\x00binary", ["--config {f}: binary content at byte 7"]),
    ("latin1.toml", "[run]\nseed = 1 # caf\xe9\n".encode("latin-1"), ["--config {f}: binary content"]),
]


@pytest.mark.parametrize(("name", "content", "fragments"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_files_name_the_file_and_key(name, content, fragments, capsys, tmp_path):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    out = tmp_path / "never"
    code, _, err = _run(["--config", str(path), "--out", str(out)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--bt-cash" not in err and "--dte-min" not in err and "internal error" not in err
    for fragment in fragments:
        assert fragment.format(f=path) in err
    assert not out.exists()


def test_command_line_value_is_blamed_on_its_flag_beside_a_file(capsys, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[strategy]\ndte_min = 50\n")
    code, _, err = _run(["--config", str(path), "--dte-max", "40"], capsys)
    assert code == 2
    assert f"config file {path} [strategy]: dte_min 50 must be <= --dte-max 40" in err


def test_help_is_grouped_with_examples_and_choices(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0
    for title in ("run options (every mode):", "backtest (also stress, benchmark):", "strategy:",
                  "intelligence layers", "--mode data:", "--mode report / stress / train:", "modes and examples:"):
        assert title in out
    assert "--fill-model {mid,fraction,cross}" in out and "--structure {iron_condor,put_credit_spread" in out
    assert "--data-source {embedded,synthetic,files}" in out
    assert "python core/main.py --mode stress --as-of 2018-03-15" in out
    assert len(out.split("\n\n", 1)[0].splitlines()) == 1  # a one-line usage, not a 16-line block
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.startswith("quantor ")


def test_dynamic_sizing_implies_fuzzy_sizing():
    cfg = build_config(None, {"fuzzy.dynamic_sizing": True})
    assert cfg.fuzzy.use_fuzzy and cfg.fuzzy.dynamic_sizing
    assert not build_config(None, {}).fuzzy.use_fuzzy
    assert build_config({"fuzzy": {"dynamic_sizing": True, "use_fuzzy": False}}).fuzzy.use_fuzzy


def test_zero_trade_run_says_why(capsys, tmp_path):
    """$10k with 10-dollar wings: the 2% risk budget ($200) is below one condor's max loss."""
    out = tmp_path / "idle"
    code, stdout, err = _run(["--mode", "backtest", *SHORT, "--bt-cash", "10000", "--wing-min", "10",
                              "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["trades"] == 0
    text = " ".join(stdout.split())
    assert "No trades: the entry was skipped" in text
    assert "risk_block x" in text and "risk budget $200.00 is below the max loss of one unit" in text


def test_end_of_run_summary_is_a_short_table_beside_buy_and_hold(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(["--mode", "backtest", "--no-progress", "--bt-start", "2018-02-01", "--bt-end",
                              "2018-02-28", "--out", str(out)], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    base = json.loads((out / "baseline_metrics.json").read_text())
    lines = stdout.splitlines()
    labels = ["Net P&L", "Return", "CAGR", "Max drawdown", "Max drawdown $", "Sharpe", "Trades", "Win rate",
              "Average credit", "Average hold", "Profit factor"]
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]] for line in lines
            if line.count("│") >= 4}
    assert list(rows) == labels  # (the header row uses heavy bars)
    assert rows["Trades"][0] == str(metrics["trades"])
    assert rows["Return"] == [f"{metrics['total_return'] * 100:.2f}%", f"{base['total_return'] * 100:.2f}%"]
    assert rows["Sharpe"][1] == f"{base['sharpe']:.2f}"
    assert "_" not in "".join(rows)  # no snake_case keys
    assert lines[-1].startswith(f"report: {out / 'report.pdf'}")
    assert (out / "report.pdf").is_file()


def test_output_files_use_one_time_convention(tmp_path):
    """UTC with +00:00 in every timestamp column of every output file."""
    import pandas as pd

    from core.backtest.run import run_backtest
    from core.outputs.backtest import write_outputs

    cfg = build_config(None, {"backtest.start": "2018-03-01", "backtest.end": "2018-04-30", "run.progress": False,
                              "run.no_plot": True})
    out = write_outputs(run_backtest(cfg), str(tmp_path / "r"))  # spans the 2018-03-11 DST change
    stamps: list[str] = []
    for name, cols in (("trades.csv", ["entry_time", "exit_time"]), ("legs.csv", ["time"]),
                       ("equity.csv", ["timestamp"]), ("greeks.csv", ["timestamp"])):
        frame = pd.read_csv(Path(out) / name)
        for col in cols:
            stamps += frame[col].astype(str).tolist()
    stamps += [json.loads(line)["ts"] for line in (Path(out) / "decisions.jsonl").read_text().splitlines()]
    stamps += [line.split(" ", 1)[0] for line in (Path(out) / "decisions.log").read_text().splitlines()]
    assert len(stamps) > 1000 and all(s.endswith("+00:00") for s in stamps)
    trades = pd.read_csv(Path(out) / "trades.csv")
    assert trades["entry_time"].is_monotonic_increasing  # listed by entry
    first = pd.Timestamp(trades["entry_time"].iloc[0]).tz_convert("America/New_York")
    assert (first.hour, first.minute) == (10, 0)  # the 10:00 New York entry, stored in UTC
