"""The embedded market model (SPEC §10): joint spot/VIX bridge, IV that follows the intraday VIX,
spreads that widen, and the checks README quotes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_factory.base import NY_TZ
from data_factory.bridge import VIX_BETA, bridge_intraday, bridge_vix, conditioned_walk, minute_bars, minute_vix
from data_factory.chains import (
    SPREAD_MOVE,
    SPREAD_VIX_POWER,
    SPREAD_VIX_REF,
    ModelChainSource,
    quote_bid_ask,
    spread_widening,
)
from data_factory.embedded import EmbeddedMarket
from data_factory.model_stats import PathStats, path_statistics, spread_by_vix, stress_day_iv


@pytest.fixture(scope="module")
def market() -> EmbeddedMarket:
    return EmbeddedMarket(seed=42)


@pytest.fixture(scope="module")
def feb_2018(market: EmbeddedMarket) -> tuple[pd.DataFrame, np.ndarray]:
    daily = market.daily_bars("2018-01-29", "2018-02-16")
    return daily, market.vix("2018-01-29", "2018-02-16")["vix"].to_numpy()


def test_vix_path_ends_each_session_at_the_real_close(feb_2018: tuple[pd.DataFrame, np.ndarray]) -> None:
    daily, vix = feb_2018
    path = minute_vix(daily, vix, seed=42)
    last = path.groupby(pd.DatetimeIndex(path.index).normalize().tz_localize(None)).last()
    np.testing.assert_array_equal(last.to_numpy(), vix)  # bitwise
    assert path.loc["2018-02-05"].iloc[0] < 25 < path.loc["2018-02-05"].iloc[-1]  # 17.31 -> 37.32 within the day


def test_vix_path_bars_agree_with_the_minute_path_and_with_the_spot_bars(
        feb_2018: tuple[pd.DataFrame, np.ndarray]) -> None:
    daily, vix = feb_2018
    minute = minute_vix(daily, vix, seed=42)
    five = bridge_vix(daily, vix, seed=42, minutes=5)
    assert five.index.equals(bridge_intraday(daily, 42, 5).index)
    np.testing.assert_array_equal(five.to_numpy(), minute.reindex(five.index).to_numpy())


def test_vix_path_moves_against_spot_but_not_deterministically(feb_2018: tuple[pd.DataFrame, np.ndarray]) -> None:
    daily, vix = feb_2018
    spot = np.log(bridge_intraday(daily, 42, 5)["close"]).diff()
    v = np.log(bridge_vix(daily, vix, 42, 5)).diff()
    same_day = pd.Series(spot.index.date, index=spot.index).diff().dt.days.eq(0)
    corr = float(np.corrcoef(spot[same_day], v[same_day])[0, 1])
    assert -0.95 < corr < -0.6
    slope = float(np.polyfit(spot[same_day], v[same_day], 1)[0])
    assert slope == pytest.approx(VIX_BETA, rel=0.35)


def test_a_day_does_not_depend_on_the_range_requested(market: EmbeddedMarket) -> None:
    """Truncation: the path of a day is the same whether the data end that day or later."""
    full = market.daily_bars("2017-06-01", "2017-06-30")
    vix = market.vix("2017-06-01", "2017-06-30")["vix"].to_numpy()
    short = full.loc[:"2017-06-14"]
    a, b = minute_bars(short, 5), minute_bars(full, 5)
    pd.testing.assert_frame_equal(a, b.loc[: a.index[-1]])
    va, vb = minute_vix(short, vix[: len(short)], 5), minute_vix(full, vix, 5)
    pd.testing.assert_series_equal(va, vb.loc[: va.index[-1]])


def test_the_first_day_of_a_range_starts_from_the_session_before(market: EmbeddedMarket) -> None:
    """Truncation at the start: the VIX path of a day is the same whatever day the range starts on."""
    a = market.intraday_vix("2018-02-05", "2018-02-06", 5)
    b = market.intraday_vix("2018-02-01", "2018-02-06", 5)
    pd.testing.assert_series_equal(a, b.loc[a.index])


def test_vix_path_stays_near_its_closes_on_2008_days(market: EmbeddedMarket) -> None:
    path = market.intraday_vix("2008-10-27", "2008-10-28", 5).loc["2008-10-28"]
    vix = market.vix("2008-10-27", "2008-10-28")["vix"]
    assert path.max() <= 1.35 * vix.max() + 1e-9 and path.min() >= vix.min() / 1.35 - 1e-9


def test_chain_follows_the_bridge_vix(market: EmbeddedMarket) -> None:
    bars = market.intraday_bars("2018-02-02", "2018-02-06", 5)
    source = market.chains(bars)
    assert isinstance(source, ModelChainSource)
    path = market.intraday_vix("2018-02-02", "2018-02-06", 5)
    for ts in (pd.Timestamp("2018-02-05 10:00", tz=NY_TZ), pd.Timestamp("2018-02-05 15:55", tz=NY_TZ)):
        assert source.vix_at(ts) == path.loc[ts]
    # one vectorised marking pass equals the per-bar one, quote for quote
    idx = bars.index[80:160]
    exp = np.array(["2018-03-16"] * 3, dtype="datetime64[D]")
    strikes, calls = np.array([250.0, 270.0, 290.0]), np.array([False, True, True])
    path_marks = source.marks_path(idx, exp, strikes, calls)
    for r, ts in enumerate(idx):
        m = source.marks(ts, exp, strikes, calls)
        np.testing.assert_array_equal(path_marks.bid[r], m.bid)
        np.testing.assert_array_equal(path_marks.ask[r], m.ask)
        np.testing.assert_allclose(path_marks.iv[r], m.iv, rtol=1e-13)


def test_spread_widening_hand_worked() -> None:
    # VIX 32 on a day down one daily sd (atm 16% -> daily sd 0.16/sqrt(252))
    sd = 0.16 / np.sqrt(252.0)
    got = float(spread_widening(32.0, 100.0 * np.exp(-sd), 100.0, 0.16))
    assert got == pytest.approx((32.0 / SPREAD_VIX_REF) ** SPREAD_VIX_POWER * (1 + SPREAD_MOVE), rel=1e-12)
    # mid 2.00 at the money, tau 0.1: spread 0.01 + 0.02 * 1.15 * w; w = 2 -> 0.056 -> 1.97 / 2.03
    bid, ask = quote_bid_ask(np.array([2.0]), np.array([0.0]), np.array([0.1]), 2.0)
    assert (float(bid[0]), float(ask[0])) == (1.97, 2.03)
    bid, ask = quote_bid_ask(np.array([0.0]), np.array([0.0]), np.array([0.1]))  # worthless: never a 0/0 quote
    assert float(ask[0]) - float(bid[0]) >= 0.01


def test_implied_vol_follows_vix_on_stress_days(market: EmbeddedMarket) -> None:
    got = stress_day_iv(market)
    assert got["stress_median"] >= 0.78
    assert 0.80 <= got["calm_median"] <= 0.90


def test_spreads_at_vix_30_are_twice_the_calm_ones(market: EmbeddedMarket) -> None:
    got = spread_by_vix(market)
    assert got["ratio"] >= 2.0


def test_morning_knows_no_more_than_a_random_walk(market: EmbeddedMarket) -> None:
    """The issue's targets, over 1999-2018 as README quotes them (seeded, so deterministic)."""
    daily = market.daily_bars()
    vix = market.vix()["vix"].to_numpy()
    st = path_statistics(daily, vix, 42, market.prior_variance())
    bridge, ref = st["spot_bridge"], st["spot_reference"]
    assert isinstance(bridge, PathStats) and isinstance(ref, PathStats)
    assert abs(bridge.corr_10am_close - ref.corr_10am_close) <= 0.05
    assert abs(bridge.first30_agree - ref.first30_agree) <= 0.03
    assert abs(bridge.momentum_t) < 2.0
    assert abs(bridge.lag1_autocorr) < 0.02
    vb, vr = st["vix_bridge"], st["vix_reference"]
    assert isinstance(vb, PathStats) and isinstance(vr, PathStats)
    assert abs(vb.corr_10am_close - vr.corr_10am_close) <= 0.05
    assert abs(vb.first30_agree - vr.first30_agree) <= 0.03
    assert st["corr_5min_spot_vix"] == pytest.approx(-0.817, abs=0.1)  # the 2014-2018 daily correlation


def test_conditioned_walk_has_the_exact_conditional_law() -> None:
    """The h-transform draws what exhaustive enumeration gives: on a 5-level lattice over 7 steps,
    every path is weighted by its Gaussian step weights and kept when it stays on 0..4, visits both
    ends and finishes at the end level; marginals and the first time at the top must agree."""
    levels, n, step, start, end = 5, 7, 1.1, 1, 3
    paths = np.stack(np.meshgrid(*[np.arange(levels)] * n, indexing="ij"), axis=-1).reshape(-1, n)
    paths = np.concatenate([np.full((len(paths), 1), start), paths], axis=1)
    weight = np.exp(-0.5 * (np.diff(paths, axis=1) ** 2).sum(axis=1) / step**2)
    weight *= (paths[:, -1] == end) & (paths == 0).any(axis=1) & (paths == levels - 1).any(axis=1)
    weight /= weight.sum()
    rng = np.random.default_rng(7)
    count = 60_000
    drawn = conditioned_walk(np.full(count, start), np.full(count, end), n, rng.random((count, n)),
                             np.full(count, step), levels)
    assert (drawn[:, 0] == start).all() and (drawn[:, -1] == end).all()
    assert ((drawn >= 0) & (drawn < levels)).all()
    assert (drawn == 0).any(axis=1).all() and (drawn == levels - 1).any(axis=1).all()
    for t in range(1, n):
        exact = np.bincount(paths[:, t], weights=weight, minlength=levels)
        got = np.bincount(drawn[:, t], minlength=levels) / count
        assert np.abs(exact - got).max() < 0.01  # sampling sd <= 0.002
    first_top = lambda w: np.argmax(w == levels - 1, axis=1)  # noqa: E731
    exact = np.bincount(first_top(paths), weights=weight, minlength=n + 1)
    got = np.bincount(first_top(drawn), minlength=n + 1) / count
    assert np.abs(exact - got).max() < 0.01


def test_minute_path_hits_the_real_extremes_only_at_bar_highs_and_lows(feb_2018: tuple[pd.DataFrame, np.ndarray]
                                                                       ) -> None:
    daily, _ = feb_2018
    bars = minute_bars(daily, 42)
    by_day = bars.groupby(pd.DatetimeIndex(bars.index).normalize().tz_localize(None))
    for day, g in by_day:
        row = daily.loc[day]
        assert g["open"].iloc[0] == row["open"] and g["close"].iloc[-1] == row["close"]
        assert g["high"].max() == row["high"] and g["low"].min() == row["low"]
        assert (g["close"] <= row["high"]).all() and (g["close"] >= row["low"]).all()
        assert (g["high"] >= g[["open", "close"]].max(axis=1)).all()
        assert (g["low"] <= g[["open", "close"]].min(axis=1)).all()
