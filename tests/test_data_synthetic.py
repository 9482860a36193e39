"""Synthetic market: determinism, regimes, jumps, model VIX and bridge consistency."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from core.dto import DataError
from data_factory.bars import daily_from_intraday
from data_factory.base import MarketSource
from data_factory.calendar import sessions
from data_factory.synthetic import STEP_YEARS, VIX_TAU_YEARS, SyntheticMarket, SyntheticParams


@pytest.fixture(scope="module")
def decade() -> SyntheticMarket:
    return SyntheticMarket("2005-01-01", "2014-12-31", seed=7)


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv().encode()).hexdigest()


def test_is_a_market_source_on_the_nyse_calendar() -> None:
    market = SyntheticMarket("2018-01-01", "2018-12-31", seed=3)
    assert isinstance(market, MarketSource)
    assert market.daily_bars().index.equals(sessions("2018-01-01", "2018-12-31"))
    assert len(market.daily_bars()) == 251
    info = market.info
    assert (info.name, info.first_date, info.last_date, info.vix_proxy_until) == (
        "synthetic",
        dt.date(2018, 1, 2),
        dt.date(2018, 12, 31),
        None,
    )
    assert info.intraday_synthetic
    assert info.chains_modelled
    assert any("model-generated" in note for note in info.notes)


def test_same_seed_identical_other_seed_different() -> None:
    a = SyntheticMarket("2016-01-01", "2017-12-31", seed=11)
    b = SyntheticMarket("2016-01-01", "2017-12-31", seed=11)
    c = SyntheticMarket("2016-01-01", "2017-12-31", seed=12)
    assert _digest(a.daily_bars()) == _digest(b.daily_bars())
    assert _digest(a.vix()) == _digest(b.vix())
    assert _digest(a.intraday_bars("2017-06-01", "2017-06-30")) == _digest(b.intraday_bars("2017-06-01", "2017-06-30"))
    assert _digest(a.daily_bars()) != _digest(c.daily_bars())


def test_prices_positive_and_bars_consistent(decade: SyntheticMarket) -> None:
    daily = decade.daily_bars()
    assert (daily[["open", "high", "low", "close"]] > 0).all().all()
    assert (daily["high"] >= daily[["open", "close"]].max(axis=1)).all()
    assert (daily["low"] <= daily[["open", "close"]].min(axis=1)).all()
    assert (daily["volume"] > 0).all()
    assert daily["open"].iloc[0] == pytest.approx(250.0, rel=0.05)  # first gap from s0


def test_regime_switching_present_and_stress_is_wilder(decade: SyntheticMarket) -> None:
    regimes = decade.regimes
    assert set(regimes.unique()) == {0, 1}
    switches = int((regimes.diff().fillna(0) != 0).sum())
    assert switches >= 4
    returns = np.log(decade.daily_bars()["close"]).diff()
    assert returns[regimes == 1].std() > 1.2 * returns[regimes == 0].std()
    vix = decade.vix()["vix"]
    assert vix[regimes == 1].mean() > vix[regimes == 0].mean() + 5


def test_jumps_present_and_land_overnight(decade: SyntheticMarket) -> None:
    state = decade.state
    jump_days = state["jump_count"] > 0
    assert 5 <= jump_days.sum() <= 200
    assert (state.loc[~jump_days, "jump"] == 0).all()
    daily = decade.daily_bars()
    gap = np.log(daily["open"] / daily["close"].shift(1)).abs()
    assert gap[jump_days].mean() > 3 * gap[~jump_days].mean()


def test_jump_frequency_matches_poisson_rate() -> None:
    calm = dataclasses.replace(SyntheticParams().calm, jump_intensity=25.2)
    params = SyntheticParams(calm=calm, p_calm_to_stress=0.0)
    market = SyntheticMarket("1995-01-01", "2034-12-31", seed=5, params=params)
    counts = market.state["jump_count"]
    assert (market.regimes == 0).all()
    rate = 25.2 * STEP_YEARS  # 0.1 jumps per session
    standard_error = np.sqrt(rate / len(counts))
    assert abs(counts.mean() - rate) < 4 * standard_error


def test_calm_variance_reverts_to_long_run_level() -> None:
    params = SyntheticParams(p_calm_to_stress=0.0)
    market = SyntheticMarket("1995-01-01", "2034-12-31", seed=9, params=params)
    assert market.state["variance"].mean() == pytest.approx(params.calm.long_run_var, rel=0.15)


def test_vix_follows_closed_form(decade: SyntheticMarket) -> None:
    p = decade.params
    state = decade.state
    stress = state["regime"] == 1
    theta = np.where(stress, p.stress.long_run_var, p.calm.long_run_var)
    lam = np.where(stress, p.stress.jump_intensity, p.calm.jump_intensity)
    kt = p.mean_reversion * VIX_TAU_YEARS
    expected_var = theta + (state["variance"] - theta) * (1 - np.exp(-kt)) / kt + lam * (p.jump_mean**2 + p.jump_sd**2)
    vix = decade.vix()
    np.testing.assert_allclose(vix["vix"], 100 * np.sqrt(expected_var) + p.vix_premium_points, rtol=1e-12)
    assert not vix["is_proxy"].any()
    assert vix["vix"].between(5, 150).all()


def test_intraday_bridge_reproduces_daily(decade: SyntheticMarket) -> None:
    bars = decade.intraday_bars("2008-09-01", "2008-12-31", 5)
    rebuilt = daily_from_intraday(bars)
    daily = decade.daily_bars("2008-09-01", "2008-12-31")
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(rebuilt[column].to_numpy(), daily[column].to_numpy()), column
    assert len(bars.loc["2008-11-28"]) == 42  # day after Thanksgiving closes 13:00


def test_bad_ranges_raise_data_error(decade: SyntheticMarket) -> None:
    with pytest.raises(DataError, match="fewer than 2"):
        SyntheticMarket("2018-12-05", "2018-12-05")
    with pytest.raises(DataError, match="positive"):
        SyntheticMarket("2018-01-01", "2018-02-01", s0=0.0)
    with pytest.raises(DataError, match=r"synthetic market covers 2005-01-03\.\.2014-12-31"):
        decade.daily_bars("2015-01-02", "2015-02-01")


def test_chains_built_from_bars(decade: SyntheticMarket) -> None:
    chains_module = pytest.importorskip("data_factory.chains")
    bars = decade.intraday_bars("2010-03-01", "2010-03-02", 5)
    assert isinstance(decade.chains(bars), chains_module.ModelChainSource)
