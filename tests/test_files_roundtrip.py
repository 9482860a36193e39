"""The CLI shows what the backtest trades, and the project's own export backtests with defaults.

* ``--mode data chain`` at 20 random bar times of a backtest equals the engine's chain at the
  same time, quote for quote (issue 11 item 7);
* ``--mode data export`` -> ``--mode backtest --spot-data/--options-data`` with default settings
  exits 0 and writes a run (issue 12 item 5);
* ``--mode data bars`` accepts ``--start/--end`` as well as ``--date``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import load_inputs
from core.config import build_config
from core.main import main
from core.modes import data as data_mode
from data_factory.export import snapshot_frame

QUOTES = ["bid", "ask", "implied_volatility", "delta", "gamma", "theta", "vega", "volume", "open_interest",
          "underlying_price"]


def test_cli_chain_equals_the_engine_chain_at_20_random_times(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-06-29", "run.progress": False})
    inputs = load_inputs(cfg)
    traded = pd.DatetimeIndex(inputs.bars.index[inputs.first_bar:])
    rng = np.random.default_rng(20181)
    for ts in traded[np.sort(rng.choice(len(traded), size=20, replace=False))]:
        assert main(["--mode", "data", "chain", "--date", f"{ts:%Y-%m-%d}", "--time", f"{ts:%H:%M}",
                     "--format", "csv"]) == 0
        cli = pd.read_csv(io.StringIO(capsys.readouterr().out), float_precision="round_trip")
        engine = snapshot_frame(inputs.chains.snapshot(ts, 0, 60))
        engine["expiration"] = engine["expiration"].astype(str)
        merged = cli.merge(engine, on=["expiration", "strike", "option_type"], suffixes=("_cli", "_engine"),
                           validate="one_to_one")
        assert len(merged) == len(cli) > 0, ts
        for name in QUOTES:
            np.testing.assert_array_equal(merged[f"{name}_cli"], merged[f"{name}_engine"], err_msg=f"{ts} {name}")
        assert set(cli["expiration"]) == set(engine["expiration"]), ts


def test_own_export_backtests_with_default_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    assert main(["--mode", "data", "export", "--start", "2018-03-01", "--end", "2018-03-16", "--out",
                 str(export)]) == 0
    run = tmp_path / "run"
    code = main(["--spot-data", str(export / "SPY_bars_5min.csv"), "--options-data",
                 str(export / "SPY_chains.parquet"), "--out", str(run), "--no-progress", "--no-plot"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (run / "trades.csv").is_file() and (run / "run.json").is_file()
    record = json.loads((run / "run.json").read_text())
    assert "exported snapshots at 10:00, 15:30" in json.dumps(record)


def test_bars_accept_a_range() -> None:
    from data_factory.embedded import EmbeddedMarket

    market = EmbeddedMarket(seed=7)
    frame = pd.read_csv(io.StringIO(data_mode.bars_table(market, None, 60, "csv", start="2018-03-05",
                                                         end="2018-03-07")))
    assert len(frame) == 3 * 7 and frame["ts"].iloc[0].startswith("2018-03-05T10:30")
    daily = pd.read_csv(io.StringIO(data_mode.bars_table(market, None, "D", "csv", start="2018-03-05",
                                                         end="2018-03-09")))
    assert len(daily) == 5
    one = data_mode.bars_table(market, "2018-03-05", 60, "csv")
    assert one == data_mode.bars_table(market, None, 60, "csv", start="2018-03-05", end="2018-03-05")
    with pytest.raises(data_mode.DataError, match="no sessions between 2018-03-03 and 2018-03-04 \\(a weekend\\)"):
        data_mode.bars_table(market, None, 5, "csv", start="2018-03-03", end="2018-03-04")
    with pytest.raises(data_mode.ConfigError, match="--start 2018-03-09 is after --end 2018-03-05"):
        data_mode.bars_table(market, None, 5, "csv", start="2018-03-09", end="2018-03-05")


def test_run_data_command_reads_new_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """``run_data_command`` reads --strikes / --start / --end / --force when core/main.py defines them."""
    from core.backtest.market import build_market

    cfg = build_config(None, {})
    ns = argparse.Namespace(command="chain", date="2018-03-05", time="10:00", fmt="csv", strikes="2",
                            dte_given=False, start=None, end=None, tf="5")
    assert data_mode.run_data_command(cfg, ns, lambda: build_market(cfg)) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert frame.groupby("expiration")["strike"].nunique().max() == 4
    ns = argparse.Namespace(command="bars", date=None, fmt="csv", tf="D", start="2018-03-05", end="2018-03-06")
    assert data_mode.run_data_command(cfg, ns, lambda: build_market(cfg)) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == 2
