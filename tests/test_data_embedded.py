"""Embedded market: arch data scaling, VIX proxy, and the seeded intraday bridge."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from core.dto import ConfigError, DataError
from data_factory.bars import daily_from_intraday
from data_factory.base import MarketSource
from data_factory.bridge import minute_bars
from data_factory.calendar import bar_grid, sessions
from data_factory.embedded import (
    VRP_FACTOR,
    EmbeddedMarket,
    _index_daily,
    causal_vix_proxy,
    garch_vix_proxy,
    vix_calibration,
)


@pytest.fixture(scope="module")
def market() -> EmbeddedMarket:
    return EmbeddedMarket(seed=7)


@pytest.fixture(scope="module")
def bars_2014_2018(market: EmbeddedMarket) -> pd.DataFrame:
    return market.intraday_bars("2014-01-01", "2018-12-31", 5)


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv().encode()).hexdigest()


# ---------------------------------------------------------------- daily data


def test_is_a_market_source(market: EmbeddedMarket) -> None:
    assert isinstance(market, MarketSource)
    info = market.info
    assert (info.name, info.underlying, info.first_date, info.last_date) == (
        "embedded",
        "SPY",
        dt.date(1999, 1, 4),
        dt.date(2018, 12, 31),
    )
    assert info.intraday_synthetic
    assert info.chains_modelled
    # the arch VIX file starts 2014-01-03, so 2014-01-02 is the last day of the leading proxy block
    assert info.vix_proxy_until == dt.date(2014, 1, 2)


def test_daily_bars_are_sp500_over_ten(market: EmbeddedMarket) -> None:
    daily = market.daily_bars()
    assert len(daily) == 5031
    assert daily.index.equals(sessions("1999-01-04", "2018-12-31"))
    # ^GSPC 2018-12-31 close 2506.850098, 2018-01-02 volume 3,367,250,000 shares
    assert daily.loc["2018-12-31", "close"] == pytest.approx(250.6850098, rel=1e-12)
    assert daily.loc["2018-01-02", "volume"] == 84_181_250.0  # x 0.025
    assert list(daily.columns) == ["open", "high", "low", "close", "volume", "open_modelled"]


def test_qqq_proxy_is_nasdaq_composite_over_forty(market: EmbeddedMarket) -> None:
    qqq = market.qqq_daily("2018-12-31", "2018-12-31")
    assert qqq["close"].iloc[0] == pytest.approx(6635.279785 / 40, rel=1e-9)
    assert EmbeddedMarket(underlying="QQQ").daily_bars("2018-12-31", "2018-12-31")["close"].iloc[0] == pytest.approx(
        165.8819946, rel=1e-9
    )


def test_outside_coverage_is_one_line_data_error(market: EmbeddedMarket) -> None:
    with pytest.raises(DataError, match=r"covers 1999-01-04\.\.2018-12-31") as err:
        market.daily_bars("2019-01-02", "2019-03-01")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="covers"):
        market.intraday_bars("1998-12-01", "1999-01-10")
    with pytest.raises(DataError, match="covers"):
        market.vix("2017-01-01", "2019-01-03")
    with pytest.raises(ConfigError, match="no embedded data"):
        EmbeddedMarket(underlying="IWM")


# ---------------------------------------------------------------- VIX


def test_vix_real_after_2014_and_proxy_before(market: EmbeddedMarket) -> None:
    vix = market.vix()
    assert vix.index.equals(market.daily_bars().index)  # trimmed to S&P sessions, ends 2018-12-31
    assert vix.loc[:"2013-12-31", "is_proxy"].all()
    assert not vix.loc["2014-01-03":, "is_proxy"].any()
    assert vix.loc["2014-01-02", "is_proxy"]  # missing from arch's VIX file
    assert vix.loc["2014-01-03", "vix"] == 13.76
    assert vix.loc["2018-12-31", "vix"] == 25.42
    assert vix["vix"].notna().all()


def test_vix_proxy_levels_are_plausible(market: EmbeddedMarket) -> None:
    yearly = market.vix()["vix"].groupby(market.vix().index.year).mean()
    assert yearly[2008] > 30  # crisis: real VIX averaged 32.7
    assert yearly[2006] < 15  # calm: real VIX averaged 12.8
    years = vix_calibration()
    assert [g.year for g in years] == list(range(1999, 2015))
    assert all(g.fit_start is None for g in years[:2])  # 1999, 2000: the prior
    for g in years[2:]:  # every later year is fitted strictly before it starts
        assert g.fit_start == dt.date(1999, 1, 5) and g.fit_end is not None and g.fit_end < dt.date(g.year, 1, 1)
        assert 0.9 < g.alpha + 0.5 * g.gamma + g.beta < 1.0 and g.gamma > g.alpha  # down days weigh more
    assert VRP_FACTOR == 1.15  # fixed in advance, not fitted


def test_vix_proxy_truncation_reads_nothing_later() -> None:
    """The proxy up to day D is identical whether the data end at D or in 2018."""
    close = _index_daily("sp500")["close"]
    full = causal_vix_proxy(close)
    for cut in ("1999-03-01", "2001-01-02", "2004-06-30", "2008-10-10", "2013-12-31"):
        part = causal_vix_proxy(close.loc[:cut])
        pd.testing.assert_series_equal(part, full.loc[:cut], check_exact=True)


def _pct_returns(close: pd.Series) -> np.ndarray:
    return np.r_[np.nan, 100 * np.diff(np.log(close.to_numpy()))]


def test_garch_proxy_is_causal(market: EmbeddedMarket) -> None:
    g = vix_calibration()[-1]
    returns = _pct_returns(market.daily_bars()["close"])
    full = garch_vix_proxy(returns, g.mu, g.omega, g.alpha, g.beta)
    for t in (1, 250, 2400, 3771, 5030):
        truncated = garch_vix_proxy(returns[: t + 1], g.mu, g.omega, g.alpha, g.beta)
        assert truncated[-1] == full[t]


def test_garch_proxy_matches_arch_forecasts(market: EmbeddedMarket) -> None:
    """Independent truth: arch's own 21-step variance forecasts with the same fixed parameters."""
    from arch import arch_model

    cal = vix_calibration()[-1]
    close = market.daily_bars("2004-01-02", "2008-12-31")["close"]
    returns = pd.Series(_pct_returns(close), index=close.index).iloc[1:]
    ours = garch_vix_proxy(np.r_[np.nan, returns.to_numpy()], cal.mu, cal.omega, cal.alpha, cal.beta, cal.gamma)[1:]
    model = arch_model(returns, mean="Constant", vol="GARCH", p=1, o=1, q=1, rescale=False)
    fixed = model.fix([cal.mu, cal.omega, cal.alpha, cal.gamma, cal.beta])
    forecast = fixed.forecast(horizon=21, start=returns.index[600], reindex=False).variance
    theirs = np.sqrt(252 * forecast.mean(axis=1).to_numpy())
    # both start-ups have decayed by 600 sessions (beta^600 ~ 1e-26)
    np.testing.assert_allclose(ours[600:], theirs, rtol=1e-9)


def test_garch_recursion_hand_worked() -> None:
    mu, omega, alpha, beta = 0.0, 0.02, 0.1, 0.85
    long_run = omega / (1 - alpha - beta)  # 0.4
    returns = np.array([np.nan, 1.0, -2.0])
    s1 = omega + alpha * 1.0 + beta * long_run  # 0.46
    s2 = omega + alpha * 4.0 + beta * s1  # 0.811
    phi = alpha + beta
    factor = (1 - phi**21) / ((1 - phi) * 21)
    expected = np.sqrt(252 * (long_run + (np.array([long_run, s1, s2]) - long_run) * factor))
    np.testing.assert_allclose(garch_vix_proxy(returns, mu, omega, alpha, beta), expected, rtol=1e-14)


# ---------------------------------------------------------------- bridge


def test_bridge_reproduces_every_day_2014_2018(market: EmbeddedMarket, bars_2014_2018: pd.DataFrame) -> None:
    daily = market.daily_bars("2014-01-01", "2018-12-31")
    rebuilt = daily_from_intraday(bars_2014_2018)
    assert len(daily) == 1258
    assert rebuilt.index.equals(daily.index)
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(rebuilt[column].to_numpy(), daily[column].to_numpy()), column


def test_bridge_bars_are_consistent(bars_2014_2018: pd.DataFrame) -> None:
    bars = bars_2014_2018
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["low"] > 0).all()
    assert (bars["volume"] >= 0).all()
    assert np.array_equal(bars["volume"], np.round(bars["volume"]))
    assert bars.index.is_monotonic_increasing
    assert bars.index.is_unique
    assert str(bars.index.tz) == "America/New_York"
    labels, _ = bar_grid(sessions("2014-01-01", "2018-12-31"), 5)
    assert np.array_equal(bars.index.tz_convert("UTC").as_unit("ns").asi8, labels)


def test_bridge_bar_counts_and_early_close(market: EmbeddedMarket, bars_2014_2018: pd.DataFrame) -> None:
    per_day = bars_2014_2018.groupby(bars_2014_2018.index.date).size()
    assert set(per_day.unique()) == {78, 42}
    assert per_day[dt.date(2018, 11, 23)] == 42
    assert per_day[dt.date(2018, 11, 26)] == 78
    assert len(market.intraday_bars("2018-11-23", "2018-11-23", 1)) == 210
    hourly = market.intraday_bars("2018-11-23", "2018-11-23", 60)
    assert [t.strftime("%H:%M") for t in hourly.index] == ["10:30", "11:30", "12:30", "13:00"]


def test_bridge_same_seed_identical_and_other_seed_different(market: EmbeddedMarket) -> None:
    again = EmbeddedMarket(seed=7).intraday_bars("2017-03-01", "2017-04-30", 5)
    assert _digest(market.intraday_bars("2017-03-01", "2017-04-30", 5)) == _digest(again)
    other = EmbeddedMarket(seed=8).intraday_bars("2017-03-01", "2017-04-30", 5)
    assert _digest(other) != _digest(again)
    assert not np.allclose(other["close"], again["close"])
    assert daily_from_intraday(other).equals(daily_from_intraday(again))  # both honour the same days


def test_bridge_subrange_equals_slice_of_full_range(market: EmbeddedMarket, bars_2014_2018: pd.DataFrame) -> None:
    sub = market.intraday_bars("2016-03-01", "2016-03-31", 5)
    window = bars_2014_2018.loc["2016-03-01":"2016-03-31"]
    assert _digest(sub) == _digest(window)


def test_bridge_volume_profile_is_u_shaped(market: EmbeddedMarket) -> None:
    bars = market.intraday_bars("2018-01-01", "2018-06-30", 5)
    normal = bars[bars.groupby(bars.index.date)["volume"].transform("size") == 78]
    by_slot = normal.groupby(normal.index.strftime("%H:%M"))["volume"].mean()
    assert by_slot["09:35"] > 2 * by_slot["12:30"]
    assert by_slot["16:00"] > 2 * by_slot["12:30"]


def test_bridge_flat_day_and_touch_at_open() -> None:
    daily = pd.DataFrame(
        {
            "open": [100.0, 101.0],
            "high": [100.0, 101.0],
            "low": [100.0, 99.0],
            "close": [100.0, 100.5],
            "volume": [1000.0, 7.0],
        },
        index=pd.DatetimeIndex(["2018-06-01", "2018-06-04"], name="date"),
    )
    bars = minute_bars(daily, seed=1)
    flat = bars.loc["2018-06-01"]
    assert (flat[["open", "high", "low", "close"]] == 100.0).all().all()
    assert flat["volume"].sum() == 1000
    second = bars.loc["2018-06-04"]
    assert second["high"].max() == 101.0
    assert second["low"].min() == 99.0
    assert second["volume"].sum() == 7
    assert second["open"].iloc[0] == 101.0
    assert second["close"].iloc[-1] == 100.5


def test_bridge_rejects_inconsistent_day() -> None:
    daily = pd.DataFrame(
        {"open": [100.0], "high": [99.0], "low": [98.0], "close": [98.5], "volume": [10.0]},
        index=pd.DatetimeIndex(["2018-06-01"], name="date"),
    )
    with pytest.raises(DataError, match="2018-06-01 is inconsistent"):
        minute_bars(daily, seed=1)


def test_chains_use_bars_close_and_vix(market: EmbeddedMarket) -> None:
    chains_module = pytest.importorskip("data_factory.chains")
    bars = market.intraday_bars("2018-03-01", "2018-03-02", 5)
    source = market.chains(bars)
    assert isinstance(source, chains_module.ModelChainSource)
