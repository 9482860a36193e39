"""Vendor reading does not depend on the chunk size; bad data that looks valid is refused or dropped.

* the same frames for every chunk size, with a daylight-saving switch inside a file larger than
  one chunk, with mixed UTC offsets and with UTC ``Z`` stamps (issue 11 item 8);
* zero quotes are never prices (dropped and counted in the source notes), bad ticks and bars
  outside the session are refused naming the row, a chain of another underlying is refused;
* the VIX note says what the VIX of a vendor source really is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data_factory.vendor_io as vendor_io
from core.dto import DataError
from data_factory.file_sniff import sniff
from data_factory.validation import validate_chain
from data_factory.vendor import FilesMarket
from data_factory.vendor_io import read_range

NY = "America/New_York"


def _dst_chain(per_snapshot: int = 6, days: int = 4, offsets: str = "local") -> pd.DataFrame:
    """Chain snapshots every 30 minutes over the 2018-03-11 DST switch (Fri 9th .. Wed 14th).

    ``offsets``: "local" writes -05:00 before the switch and -04:00 after, "utc" writes ``Z``.
    """
    sessions = pd.bdate_range("2018-03-08", periods=days)
    times = [t for d in sessions for t in pd.date_range(f"{d:%Y-%m-%d} 10:00", periods=12, freq="30min", tz=NY)]
    rows = []
    for t in times:
        stamp = t.isoformat() if offsets == "local" else t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        for k in range(per_snapshot):
            rows.append({"quote_date": stamp, "expiration": "2018-04-20", "strike": 250.0 + k,
                         "option_type": "call", "bid": 5.0 - 0.1 * k, "ask": 5.2 - 0.1 * k,
                         "underlying_price": 255.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("offsets", ["local", "utc"])
def test_frames_are_the_same_for_every_chunk_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  offsets: str) -> None:
    chain = _dst_chain(offsets=offsets)
    chain.to_csv(tmp_path / "c.csv", index=False)
    suffix = chain["quote_date"].str[-6:] if offsets == "local" else chain["quote_date"].str[-1:]
    assert suffix.nunique() == (2 if offsets == "local" else 1)
    frames = []
    for head, size in ((1_000, 250_000), (7, 11), (1, 5), (50, 13)):
        monkeypatch.setattr(vendor_io, "HEAD_ROWS", head)
        monkeypatch.setattr(vendor_io, "CHUNK_ROWS", size)
        got = read_range(tmp_path / "c.csv", "chain", validate=lambda f, r, w: validate_chain(f, "c.csv", r, w))
        assert len(got.frame) == len(chain)
        frames.append(got)
    for other in frames[1:]:
        pd.testing.assert_frame_equal(other.frame, frames[0].frame)
        np.testing.assert_array_equal(other.rows, frames[0].rows)
    stamps = frames[0].frame["quote_date"]
    assert str(stamps.dtype) == "datetime64[ns, UTC]"
    local = pd.DatetimeIndex(stamps).tz_convert(NY)
    assert set(local.strftime("%H:%M")) == {f"{h:02d}:{m:02d}" for h in range(10, 16) for m in (0, 30)}


def test_range_read_across_the_switch_is_not_cut_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dst_chain().to_csv(tmp_path / "c.csv", index=False)
    monkeypatch.setattr(vendor_io, "CHUNK_ROWS", 17)
    got = read_range(tmp_path / "c.csv", "chain", dt.date(2018, 3, 9), dt.date(2018, 3, 12))
    days = pd.DatetimeIndex(got.frame["quote_date"]).tz_convert(NY).normalize().tz_localize(None).unique()
    assert [d.date() for d in days] == [dt.date(2018, 3, 9), dt.date(2018, 3, 12)]
    assert len(got.frame) == 2 * 12 * 6


def test_dst_switch_inside_a_file_larger_than_one_real_chunk(tmp_path: Path) -> None:
    """More rows than ``CHUNK_ROWS`` (the real size), offsets -05:00 then -04:00 (issue 11: line
    250105 'quote_date is empty' on a valid line)."""
    snapshots = pd.date_range("2018-03-01 09:35", "2018-03-23 16:00", freq="5min", tz=NY)
    snapshots = snapshots[(snapshots.dayofweek < 5) & (snapshots.strftime("%H:%M") >= "09:35")
                          & (snapshots.strftime("%H:%M") <= "16:00")]
    per = -(-(vendor_io.CHUNK_ROWS + 5_000) // len(snapshots))
    stamps = np.repeat(np.array([t.isoformat() for t in snapshots]), per)
    strikes = np.tile(200.0 + np.arange(per), len(snapshots))
    frame = pd.DataFrame({"quote_date": stamps, "expiration": "2018-06-15", "strike": strikes, "option_type": "p",
                          "bid": 1.0, "ask": 1.1, "underlying_price": 270.0})
    frame.to_csv(tmp_path / "big.csv", index=False)
    assert len(frame) > vendor_io.CHUNK_ROWS
    got = read_range(tmp_path / "big.csv", "chain", validate=lambda f, r, w: validate_chain(f, "big.csv", r, w))
    assert len(got.frame) == len(frame)
    assert got.frame["quote_date"].notna().all()
    np.testing.assert_array_equal(pd.DatetimeIndex(got.frame["quote_date"]).asi8,
                                  pd.DatetimeIndex(pd.to_datetime(stamps, utc=True)).as_unit("ns").asi8)


def test_zone_convention_change_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = _dst_chain()
    chain.loc[100, "quote_date"] = chain.loc[100, "quote_date"][:-6]  # naive in an offset file
    chain.to_csv(tmp_path / "c.csv", index=False)
    monkeypatch.setattr(vendor_io, "CHUNK_ROWS", 40)
    with pytest.raises(DataError, match=r"c\.csv: line 102, column 'quote_date': .*zone offsets"):
        read_range(tmp_path / "c.csv", "chain", validate=lambda f, r, w: validate_chain(f, "c.csv", r, w))


def _session_bars(day: str = "2018-03-05", close: float = 270.0) -> pd.DataFrame:
    ts = pd.date_range(f"{day} 09:35", f"{day} 16:00", freq="5min")
    c = close + 0.2 * np.sin(np.arange(len(ts)))
    return pd.DataFrame({"ts": ts.strftime("%Y-%m-%d %H:%M:%S"), "open": c, "high": c + 0.1, "low": c - 0.1,
                         "close": c, "volume": 1000.0})


def _chain_for(day: str, symbol: str | None = None, zero_rows: int = 0) -> pd.DataFrame:
    rows = []
    for k in range(10):
        for right in ("call", "put"):
            rows.append({"quote_date": f"{day} 10:00:00", "expiration": "2018-04-20", "strike": 265.0 + k,
                         "option_type": right, "bid": 3.0, "ask": 3.2, "underlying_price": 270.0})
    frame = pd.DataFrame(rows)
    frame.loc[: zero_rows - 1, ["bid", "ask"]] = 0.0
    if symbol:
        frame["underlying_symbol"] = symbol
    return frame


def test_zero_quotes_are_dropped_and_counted(tmp_path: Path) -> None:
    _session_bars().to_csv(tmp_path / "bars.csv", index=False)
    _chain_for("2018-03-05", zero_rows=3).to_csv(tmp_path / "chain.csv", index=False)
    market = FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv", max_stale_fraction=1.0)
    bars = market.intraday_bars(dt.date(2018, 3, 5), dt.date(2018, 3, 5), 5)
    chains = market.chains(bars)
    snap = chains.snapshot(pd.Timestamp("2018-03-05 10:00", tz=NY), 0, 60)
    piece = next(iter(snap.slices.values()))
    assert (piece.call_bid > 0).all() and (piece.put_ask > 0).all()  # no $0.00 price survives
    assert 265.0 not in piece.strikes  # its call and put had no market
    assert market.dropped_quotes == 3
    assert any("dropped 3 rows of chain.csv without a market" in n for n in market.info.notes)
    assert "3 rows without a market dropped" in market.validate_all()


def test_chain_of_another_underlying_is_refused(tmp_path: Path) -> None:
    _session_bars().to_csv(tmp_path / "bars.csv", index=False)
    _chain_for("2018-03-05", symbol="QQQ").to_csv(tmp_path / "chain.csv", index=False)
    with pytest.raises(DataError, match=r"chain\.csv: line 2, column 'underlying_symbol': underlying 'QQQ' is not "
                                        r"the run's underlying SPY; pass --underlying QQQ"):
        FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv")
    FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv", underlying="QQQ")  # the right underlying passes


def test_bad_tick_and_off_session_bars_are_refused(tmp_path: Path) -> None:
    bars = _session_bars()
    bars.loc[30, ["high", "close"]] = 2700.0  # a decimal slip: 10x the neighbours
    bars.to_csv(tmp_path / "tick.csv", index=False)
    with pytest.raises(DataError, match=r"tick\.csv: line 32, column 'high': high 2700 is 10\.0x the neighbouring"):
        FilesMarket(tmp_path / "tick.csv")
    early = pd.concat([_session_bars().iloc[:1].assign(ts="2018-03-05 05:20:00"), _session_bars().iloc[1:]])
    early.to_csv(tmp_path / "early.csv", index=False)
    market = FilesMarket(tmp_path / "early.csv")
    with pytest.raises(DataError, match=r"early\.csv: line 2, column 'ts': bar ending 2018-03-05 05:20 New York "
                                        r"lies outside the regular session"):
        market.intraday_bars(dt.date(2018, 3, 5), dt.date(2018, 3, 5), 5)
    with pytest.raises(DataError, match="outside the regular session"):
        market.validate_all()  # data describe gives the same verdict


def test_vix_note_tells_the_truth_per_source(tmp_path: Path) -> None:
    from core.backtest.market import vix_note

    _session_bars().to_csv(tmp_path / "bars.csv", index=False)
    _chain_for("2018-03-05").to_csv(tmp_path / "chain.csv", index=False)
    pd.DataFrame({"date": ["2018-03-05"], "vix": [18.7]}).to_csv(tmp_path / "vix.csv", index=False)
    assert "30-day ATM implied volatility of chain.csv" in vix_note(FilesMarket(tmp_path / "bars.csv",
                                                                                 tmp_path / "chain.csv"))
    assert "read from vix.csv" in vix_note(FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv",
                                                       vix_path=tmp_path / "vix.csv"))
    assert vix_note(FilesMarket(tmp_path / "bars.csv")).startswith("VIX: none")
    assert "GARCH" not in vix_note(FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv"))


def test_format_is_sniffed_from_the_bytes(tmp_path: Path) -> None:
    frame = _session_bars()
    frame.to_parquet(tmp_path / "bars.csv", index=False)  # Parquet named .csv
    assert sniff(tmp_path / "bars.csv").parquet
    assert len(FilesMarket(tmp_path / "bars.csv").intraday_bars(dt.date(2018, 3, 5), dt.date(2018, 3, 5))) == 78
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    assert sniff(tmp_path / "semi.csv").delimiter == ";"
    assert len(FilesMarket(tmp_path / "semi.csv").daily_bars()) == 1


def test_chain_priced_off_another_underlying_is_refused(tmp_path: Path) -> None:
    """No symbol column, but the quotes' underlying price is QQQ's, not the SPY bars'."""
    _session_bars().to_csv(tmp_path / "bars.csv", index=False)
    _chain_for("2018-03-05").assign(underlying_price=160.0).to_csv(tmp_path / "chain.csv", index=False)
    market = FilesMarket(tmp_path / "bars.csv", tmp_path / "chain.csv", max_stale_fraction=1.0)
    bars = market.intraday_bars(dt.date(2018, 3, 5), dt.date(2018, 3, 5), 5)
    with pytest.raises(DataError, match=r"chain\.csv: quotes at 2018-03-05 10:00 have underlying price 160 but the "
                                        r"SPY bars close at 2[67]\d\.\d+ \(41% apart\)"):
        market.chains(bars)


def test_vix_spikes_are_not_bad_ticks(tmp_path: Path) -> None:
    """2018-02-05: VIX 17.3 -> 37.3; a VIX file is validated without the bad-tick rule."""
    _session_bars().to_csv(tmp_path / "bars.csv", index=False)
    pd.DataFrame({"date": ["2018-02-01", "2018-02-02", "2018-02-05", "2018-02-06", "2018-02-07"],
                  "vix": [13.47, 17.31, 37.32, 29.98, 27.73]}).to_csv(tmp_path / "vix.csv", index=False)
    vix = FilesMarket(tmp_path / "bars.csv", vix_path=tmp_path / "vix.csv").vix()
    assert vix["vix"].max() == 37.32


def test_a_zone_style_change_after_the_head_rows_names_its_line(tmp_path: Path) -> None:
    """Naive New York times for more than the head rows, then offsets: one line naming the first offset row."""
    from data_factory.calendar import bar_close_times, sessions

    t = pd.DatetimeIndex(np.concatenate([bar_close_times(d, 5).tz_localize(None).to_numpy()
                                         for d in sessions("2018-03-01", "2018-04-13")]))[:1100]
    stamps = [x.isoformat() for x in t[:1050]] + [x.tz_localize("America/New_York").isoformat() for x in t[1050:]]
    n = len(stamps)
    frame = pd.DataFrame({"ts": stamps, "open": 100.0, "high": 100.5, "low": 99.5, "close": 100.0,
                          "volume": np.arange(n) + 1})
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"mixed.csv: line {1050 + 2}, column 'ts'"):
        FilesMarket(path).validate_all()
