"""Vendor files: layouts, date-range reads, Greeks completion (vs QuantLib), VIX proxy, chain source."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import QuantLib as ql

import data_factory.vendor_io as vendor_io
from analytics.pricing import bsm_greeks, bsm_price
from core.dto import DataError, OptionRight
from data_factory.base import ChainSource, MarketSource
from data_factory.vendor import FilesMarket
from data_factory.vendor_io import read_range

R, Q = 0.02, 0.018
DAY = dt.date(2018, 1, 8)  # no DST change before the expiries: tau = whole days / 365
EXPIRIES = (dt.date(2018, 1, 26), dt.date(2018, 2, 23))  # 18 and 46 calendar days
STRIKES = np.arange(95.0, 106.0)


def _smile(strike: np.ndarray, expiry: dt.date) -> np.ndarray:
    return 0.18 + 0.8 * np.log(strike / 100.0) ** 2 + (0.01 if expiry == EXPIRIES[1] else 0.0)


def _model_chain(day: dt.date = DAY, spot: float = 100.0) -> pd.DataFrame:
    """A chain priced with BSM on a known smile; bid/ask straddle the model price by 1 cent."""
    rows = []
    for expiry in EXPIRIES:
        tau = (expiry - day).days / 365.0
        for is_call in (True, False):
            price = bsm_price(spot, STRIKES, tau, R, Q, _smile(STRIKES, expiry), is_call)
            rows.append(pd.DataFrame({"quote_date": day.isoformat(), "expiration": expiry.isoformat(),
                                      "strike": STRIKES, "option_type": "call" if is_call else "put",
                                      "bid": price - 0.005, "ask": price + 0.005, "underlying_price": spot}))
    return pd.concat(rows, ignore_index=True)


def _daily_bars(path: Path, days: list[dt.date], close: float = 100.0) -> Path:
    pd.DataFrame({"date": [d.isoformat() for d in days], "open": close, "high": close + 1, "low": close - 1,
                  "close": close, "volume": 1e6}).to_csv(path, index=False)
    return path


def _market(tmp_path: Path, chain: pd.DataFrame, **kwargs: object) -> FilesMarket:
    chain.to_csv(tmp_path / "chain.csv", index=False)
    return FilesMarket(_daily_bars(tmp_path / "spy.csv", [DAY]), tmp_path / "chain.csv", **kwargs)


def test_alpaca_layout_is_relabelled_to_close_times(tmp_path: Path) -> None:
    start = pd.date_range("2018-01-08 14:30", periods=6, freq="5min", tz="UTC")  # 09:30..09:55 New York
    close = np.array([100.0, 100.5, 100.2, 100.9, 101.0, 100.7])
    frame = pd.DataFrame({"timestamp": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close - 0.1,
                          "high": close + 0.3, "low": close - 0.4, "close": close, "volume": np.arange(1.0, 7.0),
                          "trade_count": 10, "vwap": close})
    frame.to_csv(tmp_path / "alpaca.csv", index=False)
    market = FilesMarket(tmp_path / "alpaca.csv")
    assert isinstance(market, MarketSource)
    assert market.bar_minutes == 5
    assert not market.is_daily
    bars = market.intraday_bars(DAY, DAY, 5)
    assert [t.strftime("%H:%M") for t in bars.index] == ["09:35", "09:40", "09:45", "09:50", "09:55", "10:00"]
    assert str(bars.index.tz) == "America/New_York"
    assert bars.index.name == "ts"
    fifteen = market.intraday_bars(DAY, DAY, 15)
    assert [t.strftime("%H:%M") for t in fifteen.index] == ["09:45", "10:00"]
    np.testing.assert_array_equal(fifteen["open"], (close - 0.1)[[0, 3]])
    np.testing.assert_array_equal(fifteen["high"], (close + 0.3)[[1, 4]])  # 100.5 + .3, 101.0 + .3
    np.testing.assert_array_equal(fifteen["low"], (close - 0.4)[[0, 5]])  # 100.0 - .4, 100.7 - .4
    np.testing.assert_array_equal(fifteen["close"], close[[2, 5]])
    np.testing.assert_array_equal(fifteen["volume"], [6.0, 15.0])
    daily = market.daily_bars()
    assert daily.index.tolist() == [pd.Timestamp(DAY)]
    assert daily["volume"].iloc[0] == 21.0
    with pytest.raises(DataError, match="ask for a multiple of 5 minutes"):
        market.intraday_bars(DAY, DAY, 7)


def test_daily_file_refuses_intraday(tmp_path: Path) -> None:
    market = FilesMarket(_daily_bars(tmp_path / "spy_daily.csv", [DAY, dt.date(2018, 3, 6)]))
    assert market.is_daily
    assert market.info.first_date == DAY
    assert market.info.last_date == dt.date(2018, 3, 6)
    assert market.info.name == "files"
    assert not market.info.intraday_synthetic
    assert market.daily_bars(dt.date(2018, 3, 6)).index.tolist() == [pd.Timestamp("2018-03-06")]
    with pytest.raises(DataError) as info:
        market.intraday_bars(DAY, DAY, 5)
    assert str(info.value) == ("spy_daily.csv: holds daily bars; intraday bars are not synthesised from vendor files "
                               "-- supply an intraday bar file or use --data-source embedded")


def _dated_chain(days: int, per_day: int) -> pd.DataFrame:
    quote = np.repeat(pd.bdate_range("2018-03-01", periods=days), per_day)
    strikes = np.tile(np.arange(per_day, dtype=float) + 90.0, days)
    return pd.DataFrame({"quote_date": quote, "expiration": pd.Timestamp("2018-06-15"), "strike": strikes,
                         "option_type": "call", "bid": 1.0, "ask": 1.1, "underlying_price": 100.0})


def test_parquet_range_read_skips_other_row_groups(tmp_path: Path) -> None:
    chain = _dated_chain(days=10, per_day=50)
    pq.write_table(pa.Table.from_pandas(chain, preserve_index=False), tmp_path / "c.parquet", row_group_size=50)
    got = read_range(tmp_path / "c.parquet", "chain", dt.date(2018, 3, 6), dt.date(2018, 3, 8))
    days = pd.to_datetime(got.frame["quote_date"]).dt.date
    assert sorted(set(days)) == [dt.date(2018, 3, 6), dt.date(2018, 3, 7), dt.date(2018, 3, 8)]
    assert len(got.frame) == 150
    assert got.rows_scanned == 150
    assert got.rows[0] == 151
    assert got.rows[-1] == 300
    assert got.row_word == "row"


def test_parquet_errors_name_the_file_row(tmp_path: Path) -> None:
    chain = _dated_chain(days=4, per_day=10)
    chain.loc[26, "bid"] = 2.0  # crossed; 1-based row 27 of the file
    pq.write_table(pa.Table.from_pandas(chain, preserve_index=False), tmp_path / "c.parquet", row_group_size=10)
    _daily_bars(tmp_path / "spy.csv", [dt.date(2018, 3, 5)])
    with pytest.raises(DataError, match=r"^c\.parquet: row 27, column 'bid': crossed quote: bid 2 > ask 1\.1"):
        FilesMarket(tmp_path / "spy.csv", tmp_path / "c.parquet")  # the first rows are checked on opening


def test_csv_range_read_stops_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vendor_io, "CHUNK_ROWS", 40)
    _dated_chain(days=10, per_day=20).to_csv(tmp_path / "c.csv", index=False)
    got = read_range(tmp_path / "c.csv", "chain", dt.date(2018, 3, 2), dt.date(2018, 3, 5))
    assert len(got.frame) == 40
    assert got.rows[0] == 22
    assert got.row_word == "line"
    assert got.rows_scanned == 80  # stops after the chunk that passes the end date (200 rows in the file)


def test_missing_iv_and_greeks_are_computed(tmp_path: Path) -> None:
    market = _market(tmp_path, _model_chain(), rate=R, div_yield=Q)
    source = market.chains(market.daily_bars())
    assert isinstance(source, ChainSource)
    for expiry in EXPIRIES:
        piece = source.expiry_slice(pd.Timestamp(DAY), expiry)
        tau = (expiry - DAY).days / 365.0
        assert piece.dte == (expiry - DAY).days
        assert piece.tau == pytest.approx(tau, abs=1e-12)
        sigma = _smile(piece.strikes, expiry)
        np.testing.assert_allclose(piece.call_iv, sigma, atol=1e-8)
        np.testing.assert_allclose(piece.put_iv, sigma, atol=1e-8)
        for right, prefix in ((True, "call_"), (False, "put_")):
            g = bsm_greeks(100.0, piece.strikes, tau, R, Q, sigma, right)
            for name in ("delta", "gamma", "theta", "vega"):
                np.testing.assert_allclose(getattr(piece, prefix + name), getattr(g, name), rtol=1e-6, atol=1e-9)


def test_computed_greeks_match_quantlib(tmp_path: Path) -> None:
    market = _market(tmp_path, _model_chain(), rate=R, div_yield=Q)
    quote = market.chains(market.daily_bars()).snapshot(pd.Timestamp(DAY), 0, 60).slices[EXPIRIES[0]].quote(
        103.0, OptionRight.CALL, "SPY", pd.Timestamp(DAY))
    assert quote is not None
    today = ql.Date(8, 1, 2018)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(100.0)), ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), quote.iv, dc)))
    option = ql.EuropeanOption(ql.PlainVanillaPayoff(ql.Option.Call, 103.0), ql.EuropeanExercise(ql.Date(26, 1, 2018)))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    assert quote.mid == pytest.approx(option.NPV(), abs=1e-9)
    assert quote.delta == pytest.approx(option.delta(), abs=1e-10)
    assert quote.gamma == pytest.approx(option.gamma(), abs=1e-10)
    assert quote.theta == pytest.approx(option.thetaPerDay(), abs=1e-10)
    assert quote.vega == pytest.approx(option.vega() / 100.0, abs=1e-10)


def test_vendor_greeks_are_kept(tmp_path: Path) -> None:
    chain = _model_chain().assign(delta=0.123, implied_volatility=0.3)
    market = _market(tmp_path, chain, rate=R, div_yield=Q)
    piece = market.chains(market.daily_bars()).expiry_slice(pd.Timestamp(DAY), EXPIRIES[0])
    assert np.all(piece.call_delta == 0.123)
    assert np.all(piece.put_iv == 0.3)
    g = bsm_greeks(100.0, piece.strikes, 18 / 365.0, R, Q, 0.3, True)
    np.testing.assert_allclose(piece.call_gamma, g.gamma, rtol=1e-12)  # computed from the vendor IV


def test_vix_proxy_interpolates_total_variance_at_30_days(tmp_path: Path) -> None:
    rows = []
    for expiry, dte, iv in ((dt.date(2018, 1, 28), 20, 0.15), (dt.date(2018, 2, 18), 41, 0.25)):
        assert (expiry - DAY).days == dte
        for kind in ("call", "put"):
            rows.append(pd.DataFrame({"quote_date": DAY.isoformat(), "expiration": expiry.isoformat(),
                                      "strike": [99.0, 100.0, 101.0], "option_type": kind, "bid": 1.0, "ask": 1.2,
                                      "underlying_price": 100.0, "implied_volatility": [0.5, iv, 0.5]}))
    market = _market(tmp_path, pd.concat(rows, ignore_index=True), rate=R, div_yield=Q)
    vix = market.vix()
    assert market.info.vix_proxy_until == DAY
    # sqrt((w20 + (w41 - w20) (30-20)/(41-20)) / t30), w = iv^2 t
    assert vix["vix"].iloc[0] == pytest.approx(22.029921931715062, abs=1e-9)
    assert bool(vix["is_proxy"].iloc[0])
    assert vix.index.tolist() == [pd.Timestamp(DAY)]


def test_marks_use_quotes_and_model_for_missing_contracts(tmp_path: Path) -> None:
    market = _market(tmp_path, _model_chain().query("strike != 102"), rate=R, div_yield=Q)
    source = market.chains(market.daily_bars())
    exp = np.array([EXPIRIES[0], EXPIRIES[0], EXPIRIES[1]])
    marks = source.marks(pd.Timestamp(DAY), exp, np.array([101.0, 102.0, 95.0]), np.array([True, True, False]))
    tau = 18 / 365.0
    assert marks.mid[0] == pytest.approx(bsm_price(100.0, 101.0, tau, R, Q, _smile(np.array(101.0), EXPIRIES[0]),
                                                   True), abs=1e-12)
    assert marks.ask[0] - marks.bid[0] == pytest.approx(0.01)
    iv_102 = 0.5 * (_smile(np.array(101.0), EXPIRIES[0]) + _smile(np.array(103.0), EXPIRIES[0]))
    assert marks.iv[1] == pytest.approx(iv_102, abs=1e-8)  # linear in strike between 101 and 103
    assert marks.bid[1] == marks.ask[1] == pytest.approx(bsm_price(100.0, 102.0, tau, R, Q, iv_102, True), abs=1e-8)
    assert marks.delta[2] == pytest.approx(bsm_greeks(100.0, 95.0, 46 / 365.0, R, Q, _smile(np.array(95.0),
                                                      EXPIRIES[1]), False).delta, abs=1e-8)


def test_column_map_and_aliases(tmp_path: Path) -> None:
    chain = _model_chain().rename(columns={"quote_date": "QuoteDate", "expiration": "Expiry Date", "strike": "K",
                                           "option_type": "cp_flag", "underlying_price": "underlying_last"})
    chain["cp_flag"] = chain["cp_flag"].str[0].str.upper()
    market = _market(tmp_path, chain, column_map={"Expiry Date": "expiration", "K": "strike"}, rate=R, div_yield=Q)
    source = market.chains(market.daily_bars())
    assert source.expiries(pd.Timestamp(DAY)) == list(EXPIRIES)
    assert source.snapshot(pd.Timestamp(DAY), 0, 30).expiries == [EXPIRIES[0]]


def test_no_options_file(tmp_path: Path) -> None:
    market = FilesMarket(_daily_bars(tmp_path / "spy.csv", [DAY]))
    with pytest.raises(DataError, match="no options file; pass --options-data FILE"):
        market.chains(market.daily_bars())
    with pytest.raises(DataError, match="no VIX: pass a VIX file"):
        market.vix()
    with pytest.raises(DataError, match="file not found"):
        FilesMarket(tmp_path / "nope.csv")


def test_common_days_and_vix_proxy_reads_near_the_money_rows(tmp_path: Path) -> None:
    days = [DAY, dt.date(2018, 1, 9), dt.date(2018, 1, 10)]
    _daily_bars(tmp_path / "spy.csv", days[:2])
    chains = [_model_chain(day) for day in days[1:]]
    pd.concat(chains, ignore_index=True).to_csv(tmp_path / "chain.csv", index=False)
    market = FilesMarket(tmp_path / "spy.csv", tmp_path / "chain.csv", rate=R, div_yield=Q)
    assert market.common_days().tolist() == [pd.Timestamp("2018-01-09")]
    vix = market.vix()
    assert vix.index.tolist() == [pd.Timestamp("2018-01-09"), pd.Timestamp("2018-01-10")]
    # ATM IV 0.18 at 17 days and 0.19 at 45 days (smile minimum at K = 100 ~ forward)
    t1, t2, t30 = 17 / 365, 45 / 365, 30 / 365
    w30 = 0.18**2 * t1 + (0.19**2 * t2 - 0.18**2 * t1) * (t30 - t1) / (t2 - t1)
    assert vix["vix"].iloc[0] == pytest.approx(100 * np.sqrt(w30 / t30), abs=1e-6)
