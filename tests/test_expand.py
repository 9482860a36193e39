"""``data expand``: modelled intraday quotes from end-of-day snapshots and real intraday spot.

A BSM-priced synthetic day with a smile linear in forward log-moneyness is expanded and checked
exactly: IV read at the bar's moneyness, price against QuantLib, quotes from the spread model;
the session's own closing snapshot never reaches its bars; the file is flagged as modelled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import QuantLib as ql

from analytics.pricing import bsm_greeks
from core.main import main
from data_factory.chains import quote_bid_ask, spread_widening
from data_factory.expand_meta import is_expanded
from data_factory.vendor import FilesMarket
from data_factory.vendor_chains import vix_proxy

R, Q = 0.02, 0.018
S0 = 270.0
SNAP_DAY = dt.date(2018, 3, 5)
DAY = dt.date(2018, 3, 6)
EXPIRIES = (dt.date(2018, 3, 16), dt.date(2018, 4, 20))
STRIKES = np.arange(240.0, 301.0, 5.0)


def _tau(t: pd.Timestamp, expiry: dt.date) -> float:
    close = pd.Timestamp(f"{expiry} 16:00", tz="America/New_York")
    return (close - t).total_seconds() / (365.0 * 86400.0)


def smile(k: np.ndarray, level: float = 0.18) -> np.ndarray:
    return level - 0.4 * k


def _snapshot(day: dt.date, spot: float, level: float) -> pd.DataFrame:
    t = pd.Timestamp(f"{day} 16:00", tz="America/New_York")
    rows = []
    for e in EXPIRIES:
        tau = _tau(t, e)
        k = np.log(STRIKES / (spot * np.exp((R - Q) * tau)))
        iv = smile(k, level)
        for is_call in (True, False):
            g = bsm_greeks(spot, STRIKES, tau, R, Q, iv, np.full(len(STRIKES), is_call))
            rows.append(pd.DataFrame({"quote_date": day.isoformat(), "expiration": e.isoformat(),
                                      "strike": STRIKES, "option_type": "call" if is_call else "put",
                                      "bid": np.maximum(g.price - 0.01, 0.0),
                                      "ask": g.price + 0.01, "underlying_price": spot, "implied_volatility": iv}))
    return pd.concat(rows, ignore_index=True)


def _bars(day: dt.date, first: float, last: float) -> pd.DataFrame:
    ts = pd.date_range(f"{day} 09:35", f"{day} 16:00", freq="5min", tz="America/New_York")
    close = np.linspace(first, last, len(ts))
    return pd.DataFrame({"ts": [t.isoformat() for t in ts], "open": close, "high": close + 0.05,
                         "low": close - 0.05, "close": close, "volume": 1000})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("expand")
    spot = root / "spot.csv"
    pd.concat([_bars(SNAP_DAY, S0, S0), _bars(DAY, S0, 273.0)]).to_csv(spot, index=False)
    eod = root / "eod.csv"
    _snapshot(SNAP_DAY, S0, 0.18).to_csv(eod, index=False)
    eod_both = root / "eod_both.csv"  # plus the session's own closing snapshot, at another level
    pd.concat([_snapshot(SNAP_DAY, S0, 0.18), _snapshot(DAY, 273.0, 0.30)]).to_csv(eod_both, index=False)
    return {"root": root, "spot": spot, "eod": eod, "eod_both": eod_both}


def _expand(files: dict[str, Path], eod: str, out: str) -> pd.DataFrame:
    rc = main(["--mode", "data", "expand", "--options", str(files[eod]), "--spot", str(files["spot"]), "--tf", "5",
               "--start", DAY.isoformat(), "--end", DAY.isoformat(), "--out", str(files["root"] / out)])
    assert rc == 0
    path = files["root"] / out / "SPY_chains_expanded.parquet"
    assert is_expanded(path)
    return pq.read_table(path).to_pandas()


def test_expand_reproduces_a_bsm_priced_day_exactly(files: dict[str, Path]) -> None:
    got = _expand(files, "eod", "one")
    assert len(got) == 78 * len(EXPIRIES) * 2 * len(STRIKES)
    t = pd.DatetimeIndex(got["quote_date"])
    tau = np.array([_tau(ts, e) for ts, e in zip(t, pd.to_datetime(got["expiration"]).dt.date, strict=True)])
    s = got["underlying_price"].to_numpy()
    k = np.log(got["strike"].to_numpy() / (s * np.exp((R - Q) * tau)))
    inside = got["strike"].between(250.0, 290.0).to_numpy()  # within the listed moneyness at every bar
    np.testing.assert_allclose(got["implied_volatility"].to_numpy()[inside], smile(k)[inside], rtol=0, atol=1e-12)
    calls = got["option_type"].eq("call").to_numpy()
    g = bsm_greeks(s, got["strike"].to_numpy(), tau, R, Q, got["implied_volatility"].to_numpy(), calls)
    np.testing.assert_allclose(got["delta"].to_numpy(), g.delta, rtol=1e-12, atol=1e-12)
    # quotes: exactly the spread model around the BSM price, the snapshot's 30-day ATM vol as the vol level
    market = FilesMarket(files["spot"], files["eod"], rate=R, div_yield=Q)
    atm30 = float(vix_proxy(market._chain_rows(SNAP_DAY, SNAP_DAY), R, Q)["vix"].iloc[0]) / 100.0
    z = k / (got["implied_volatility"].to_numpy() * np.sqrt(tau))
    bid, ask = quote_bid_ask(g.price, z, tau, spread_widening(100 * atm30, s, S0, atm30))
    np.testing.assert_array_equal(got["bid"].to_numpy(), bid)
    np.testing.assert_array_equal(got["ask"].to_numpy(), ask)
    assert np.all(np.abs(0.5 * (bid + ask) - g.price) <= 0.5 * (ask - bid) + 1e-9)


def test_prices_agree_with_quantlib(files: dict[str, Path]) -> None:
    got = _expand(files, "eod", "ql")
    row = got[(got["option_type"] == "put") & (got["strike"] == 260.0)].iloc[40]
    tau = _tau(pd.Timestamp(row["quote_date"]), pd.Timestamp(row["expiration"]).date())
    spot, iv = float(row["underlying_price"]), float(row["implied_volatility"])
    fwd, df = spot * np.exp((R - Q) * tau), np.exp(-R * tau)
    black = ql.blackFormula(ql.Option.Put, 260.0, fwd, iv * np.sqrt(tau), df)  # independent closed form
    assert float(bsm_greeks(spot, 260.0, tau, R, Q, iv, False).price) == pytest.approx(black, abs=1e-10)
    assert row["bid"] <= black <= row["ask"]
    assert float(row["delta"]) == pytest.approx(-np.exp(-Q * tau) * ql.CumulativeNormalDistribution()(
        -(np.log(fwd / 260.0) + 0.5 * iv * iv * tau) / (iv * np.sqrt(tau))), abs=1e-10)


def test_the_sessions_own_closing_snapshot_never_reaches_its_bars(files: dict[str, Path]) -> None:
    a = _expand(files, "eod", "a")
    b = _expand(files, "eod_both", "b")
    pd.testing.assert_frame_equal(a, b)


def test_expanded_file_is_flagged_modelled_in_the_run_record(files: dict[str, Path]) -> None:
    _expand(files, "eod", "flag")
    market = FilesMarket(files["spot"], files["root"] / "flag" / "SPY_chains_expanded.parquet")
    assert market.info.chains_modelled is True
    assert any("MODELLED" in n for n in market.info.notes)


def test_expand_refuses_bad_arguments(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mode", "data", "expand", "--spot", str(files["spot"]), "--out", str(files["root"] / "x")]) == 2
    assert "needs --options EOD_FILE" in capsys.readouterr().err
    assert main(["--mode", "data", "expand", "--options", str(files["eod"]), "--spot", str(files["spot"]),
                 "--tf", "15", "--out", str(files["root"] / "y")]) == 2
    assert "--tf '15'" in capsys.readouterr().err
    assert not (files["root"] / "x").exists() and not (files["root"] / "y").exists()
