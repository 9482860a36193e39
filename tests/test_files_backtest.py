"""Vendor files drive the same engine: export the embedded market, backtest the files, and the
decisions agree with the embedded run where both see the same quotes."""

from __future__ import annotations

import datetime as dt

import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from core.main import main
from data_factory.embedded import EmbeddedMarket
from data_factory.export import export_market

HALF_HOURLY = tuple(f"{h:02d}:{m:02d}" for h in range(9, 16) for m in (0, 30) if (h, m) >= (9, 30)) + ("16:00",)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "spy"
    export_market(EmbeddedMarket(seed=7), dt.date(2018, 3, 1), dt.date(2018, 3, 9), out, dte_max=50,
                  chain_times=HALF_HOURLY)
    return out


def _cfg(exported, **extra):
    return build_config(None, {
        "data.spot_data": str(exported / "SPY_bars_5min.csv"),
        "data.options_data": str(exported / "SPY_chains.parquet"),
        "data.vix_data": str(exported / "SPY_vix.csv"), "data.chain_max_stale_fraction": 1.0,
        "backtest.start": "2018-03-01", "backtest.end": "2018-03-09", "run.progress": False, "run.no_plot": True,
        **extra})


def test_files_backtest_matches_embedded_entries(exported):
    files = run_backtest(_cfg(exported))
    embedded = run_backtest(build_config(None, {"backtest.start": "2018-03-01", "backtest.end": "2018-03-09",
                                                "run.progress": False, "run.no_plot": True}))
    assert files.inputs.info.name == "files"
    f_entries = {x[:10]: x.split("|")[0] for x in files.driver.decisions if " ENTER " in x}
    e_entries = {x[:10]: x.split("|")[0] for x in embedded.driver.decisions if " ENTER " in x}
    assert f_entries["2018-03-02"].replace("P0001", "P0002") == e_entries["2018-03-02"]
    first = [x for x in files.driver.decisions if x.startswith("2018-03-01T10:00")][0]
    assert "VIX unavailable" in first  # the exported VIX starts on the first day: no previous close


def test_files_stale_chains_abort_with_one_line(exported, tmp_path, capsys):
    """Vendor chains (no export manifest beside them) sparser than the 600 s limit: one line naming the option."""
    import shutil

    for name in ("SPY_bars_5min.csv", "SPY_chains.parquet"):
        shutil.copy(exported / name, tmp_path / name)
    out = tmp_path / "run"
    argv = ["--mode", "backtest", "--no-progress", "--no-plot", "--spot-data", str(tmp_path / "SPY_bars_5min.csv"),
            "--options-data", str(tmp_path / "SPY_chains.parquet"), "--bt-start", "2018-03-01", "--bt-end",
            "2018-03-09", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no chain snapshot within 600s" in err
    assert "--chain-max-lag" in err
    assert not out.exists()
