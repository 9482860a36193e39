"""Export -> FilesMarket round trip (bars exact, chains to float tolerance), atomic writes, --mode data functions."""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.dto import ConfigError, DataError
from core.modes import data as data_mode
from data_factory.base import SourceInfo
from data_factory.embedded import EmbeddedMarket
from data_factory.export import export_market
from data_factory.vendor import FilesMarket

START, END = dt.date(2018, 3, 5), dt.date(2018, 3, 6)
FIELDS = ("strikes", "call_bid", "call_ask", "call_iv", "call_delta", "call_gamma", "call_theta", "call_vega",
          "call_volume", "call_oi", "put_bid", "put_ask", "put_iv", "put_delta", "put_gamma", "put_theta", "put_vega",
          "put_volume", "put_oi")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedMarket, FilesMarket, Path]:
    market = EmbeddedMarket(seed=7)
    out = tmp_path_factory.mktemp("export") / "spy_2018"
    result = export_market(market, START, END, out, minutes=5, dte_max=45)
    assert result.bars == 2 * 78
    assert result.snapshots == 4
    assert result.chain_rows > 0
    return market, FilesMarket.from_export(out), out


def test_folder_layout_and_manifest(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    _, files, out = exported
    assert sorted(p.name for p in out.iterdir()) == [".quantor-run", "SPY_bars_5min.csv", "SPY_chains.parquet",
                                                     "SPY_vix.csv", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chain_times"] == ["10:00", "15:30"]
    assert manifest["source"]["name"] == "embedded"
    header = (out / "SPY_bars_5min.csv").read_text().splitlines()[:2]
    assert header[0] == "timestamp,open,high,low,close,volume"
    assert header[1].startswith("2018-03-05T14:30:00Z,")  # 09:30-09:35 New York bar, start time in UTC
    assert files.info.name == "files"
    assert files.info.first_date == START
    assert files.info.last_date == END


def test_bars_round_trip_exactly(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    market, files, _ = exported
    pd.testing.assert_frame_equal(files.intraday_bars(START, END, 5), market.intraday_bars(START, END, 5))
    pd.testing.assert_frame_equal(files.intraday_bars(START, END, 15), market.intraday_bars(START, END, 15))
    pd.testing.assert_frame_equal(files.vix(), market.vix(START, END))


def test_chains_round_trip(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    market, files, _ = exported
    bars = market.intraday_bars(START, END, 5)
    times = bars.index[bars.index.strftime("%H:%M").isin(["10:00", "15:30"])]
    from core.backtest.market import chain_window

    model = chain_window(market, START, END, 5)[1]  # the engine's state: warm-up bars before START
    vendor = files.chains(files.intraday_bars(START, END, 5).loc[times])
    assert vendor.alignment.diagnostics.exact_pct == 100.0
    for ts in times:
        a, b = model.snapshot(ts, 0, 45), vendor.snapshot(ts, 0, 45)
        assert a.expiries == b.expiries
        assert len(a.expiries) > 3
        assert b.spot == a.spot
        for expiry in a.expiries:
            sa, sb = a.slices[expiry], b.slices[expiry]
            assert sa.dte == sb.dte
            # the vendor reader keeps vendor files' calendar time; the model prices in trading time
            # (data_factory.clock), so only the quotes and Greeks travel, not the tau
            calendar_tau = (pd.Timestamp(f"{expiry} 16:00", tz="America/New_York") - ts) / pd.Timedelta(days=365)
            assert sb.tau == pytest.approx(calendar_tau, rel=1e-12)
            for name in FIELDS:
                np.testing.assert_allclose(getattr(sb, name), getattr(sa, name), rtol=1e-12, atol=0, err_msg=name)


class _BrokenMarket:
    """A market whose chains fail half-way through an export."""

    def __init__(self) -> None:
        self.info = SourceInfo("broken", "SPY", START, START, False, None, False)
        self._real = EmbeddedMarket(seed=7)

    def daily_bars(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        return self._real.daily_bars(start, end)

    def intraday_bars(self, start: dt.date, end: dt.date, minutes: int = 5) -> pd.DataFrame:
        return self._real.intraday_bars(start, end, minutes)

    def vix(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        return self._real.vix(start, end)

    def chains(self, bars: pd.DataFrame) -> object:
        raise RuntimeError("chain feed dropped")


def test_failed_export_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="chain feed dropped"):
        export_market(_BrokenMarket(), START, START, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="holds files this tool did not write; choose a new or empty folder"):
        export_market(_BrokenMarket(), START, START, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_export_replaces_a_previous_export_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "one"
    export_market(EmbeddedMarket(seed=7), START, START, out, chain_times=("15:30",))
    with pytest.raises(ConfigError, match="holds a previous run; add --force"):
        export_market(EmbeddedMarket(seed=7), START, START, out, chain_times=("15:30",))
    export_market(EmbeddedMarket(seed=7), END, END, out, chain_times=("15:30",), force=True)
    assert json.loads((out / "manifest.json").read_text())["start"] == str(END)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="also holds 'notes.txt'"):
        export_market(EmbeddedMarket(seed=7), START, START, out, chain_times=("15:30",), force=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_first_exported_day_has_the_previous_close(tmp_path: Path) -> None:
    """The export's first day is priced from the same state as the backtest (previous close known)."""
    from core.backtest.market import chain_window

    market = EmbeddedMarket(seed=7)
    export_market(market, START, START, tmp_path / "x", dte_max=45)
    files = FilesMarket.from_export(tmp_path / "x")
    ts = pd.Timestamp("2018-03-05 10:00", tz="America/New_York")
    got = files.chains(files.intraday_bars(START, START, 5)).snapshot(ts, 0, 45)
    _, engine = chain_window(market, START, START, 5)
    want = engine.snapshot(ts, 0, 45)
    assert got.expiries == want.expiries
    for expiry in want.expiries:
        np.testing.assert_allclose(got.slices[expiry].put_bid, want.slices[expiry].put_bid, rtol=1e-12)
        np.testing.assert_allclose(got.slices[expiry].call_ask, want.slices[expiry].call_ask, rtol=1e-12)


def test_describe(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    market, files, _ = exported
    text = data_mode.describe(files)
    assert text.splitlines()[:5] == ["source: files (SPY)", "coverage: 2018-03-05 .. 2018-03-06",
                                     "intraday bars: observed", "option chains: observed quotes",
                                     "VIX proxy until: never (real VIX)"]
    assert "VIX: 2 days 2018-03-05 .. 2018-03-06, 0 proxy days" in text
    assert "days in both spot and options files: 2 (2018-03-05 .. 2018-03-06)" in text
    assert "intraday bars: synthesised" in data_mode.describe(market)


def test_chain_table_formats(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    _, files, _ = exported
    frame = pd.read_csv(io.StringIO(data_mode.chain_table(files, "2018-03-05", "10:00", 20, 45, fmt="csv")))
    assert tuple(frame.columns) == data_mode.CHAIN_COLUMNS
    assert frame["dte"].between(20, 45).all()
    assert set(frame["option_type"]) == {"call", "put"}
    np.testing.assert_allclose(frame["mid"], 0.5 * (frame["bid"] + frame["ask"]), rtol=1e-12)
    spot = files.intraday_bars(START, START, 5).loc[pd.Timestamp("2018-03-05 10:00", tz="America/New_York"), "close"]
    np.testing.assert_allclose(frame["underlying_price"], spot, rtol=1e-15)
    records = json.loads(data_mode.chain_table(files, START, "10:00", 20, 45, fmt="json"))
    assert len(records) == len(frame)
    assert records[0]["expiration"] == frame["expiration"].iloc[0]
    table = data_mode.chain_table(files, START, "10:00", 20, 25, fmt="table")
    assert "SPY chain at 2018-03-05T10:00:00-05:00" in table
    assert " IV " in table
    narrow = data_mode.chain_table(files, START, "10:00", 20, 25, fmt="table", width=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80  # fits an 80-column terminal
    assert " bid " in narrow and " ask " in narrow and " IV " in narrow and " delta " in narrow
    window = pd.read_csv(io.StringIO(data_mode.chain_table(files, START, "10:00", 20, 45, fmt="csv", strikes=3)))
    assert window.groupby("expiration")["strike"].nunique().max() == 6  # 3 strikes either side of spot
    everything = pd.read_csv(io.StringIO(data_mode.chain_table(files, START, "10:00", 20, 45, fmt="csv",
                                                               strikes="all")))
    assert len(everything) == len(frame) > len(window)  # csv / json keep every strike by default
    shown, _ = data_mode.chain_frame(files, START, "10:00", 20, 45, strikes=None)  # the table's default
    assert shown.groupby("expiration")["strike"].nunique().max() == 2 * data_mode.DEFAULT_STRIKES
    nearest = r"no expiry with 25 <= DTE <= 30 at 2018-03-05 10:00; nearest: 24 DTE \(2018-03-29\), 32 DTE"
    with pytest.raises(DataError, match=nearest):
        data_mode.chain_table(files, START, "10:00", 25, 30)
    with pytest.raises(DataError, match="no 5-minute bar at 10:02 on 2018-03-05"):
        data_mode.chain_table(files, START, "10:02")
    with pytest.raises(DataError, match="format 'xml' is invalid"):
        data_mode.chain_table(files, START, "10:00", fmt="xml")


def test_bars_table(exported: tuple[EmbeddedMarket, FilesMarket, Path]) -> None:
    market, files, _ = exported
    rows = json.loads(data_mode.bars_table(files, "2018-03-06", 15, fmt="json"))
    assert len(rows) == 26
    assert rows[0]["ts"].startswith("2018-03-06T09:45:00")
    daily = pd.read_csv(io.StringIO(data_mode.bars_table(files, "2018-03-06", "D", fmt="csv")))
    expected = market.daily_bars(END, END)
    np.testing.assert_allclose(daily[["open", "high", "low", "close"]].to_numpy(),
                               expected[["open", "high", "low", "close"]].to_numpy(), rtol=1e-12)
    assert "SPY bars on 2018-03-06 (60)" in data_mode.bars_table(files, END, 60)


def test_data_mode_export(tmp_path: Path) -> None:
    summary = data_mode.export(EmbeddedMarket(seed=7), "2018-03-05", "2018-03-05", tmp_path / "one_day",
                               chain_times=("15:30",))
    assert summary == f"wrote 78 bars, 1 chain snapshots ({_rows(tmp_path / 'one_day')} rows) and VIX to " \
                      f"{tmp_path / 'one_day'}"
    with pytest.raises(DataError, match="export start 2018-03-06 is after end 2018-03-05"):
        data_mode.export(EmbeddedMarket(seed=7), "2018-03-06", "2018-03-05", tmp_path / "x")


def _rows(folder: Path) -> int:
    return int(json.loads((folder / "manifest.json").read_text())["chain_rows"])


def test_chain_table_on_end_of_day_files(tmp_path: Path) -> None:
    pd.DataFrame({"date": ["2018-01-08"], "open": [100.0], "high": [101.0], "low": [99.0], "close": [100.5],
                  "volume": [1e6]}).to_csv(tmp_path / "spy.csv", index=False)
    pd.DataFrame({"quote_date": "2018-01-08", "expiration": "2018-01-26", "strike": [100.0, 100.0],
                  "option_type": ["c", "p"], "bid": [1.9, 1.5], "ask": [2.1, 1.7], "underlying_price": 100.4,
                  "implied_volatility": 0.15}).to_csv(tmp_path / "chain.csv", index=False)
    files = FilesMarket(tmp_path / "spy.csv", tmp_path / "chain.csv")
    frame = pd.read_csv(io.StringIO(data_mode.chain_table(files, "2018-01-08", fmt="csv")))
    assert frame[["option_type", "bid", "ask", "mid", "dte"]].values.tolist() == [["call", 1.9, 2.1, 2.0, 18],
                                                                                 ["put", 1.5, 1.7, 1.6, 18]]
    assert frame["underlying_price"].tolist() == [100.5, 100.5]  # the bar close at the snapshot
