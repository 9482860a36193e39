"""Listing calendar, strike grid, VIX-anchored surface and modelled chains (data_factory)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql
from scipy.integrate import quad

from analytics.pricing import bsm_price
from core.dto import ConfigError, DataError, OptionRight
from data_factory.base import NY_TZ, ChainSource
from data_factory.chains import ModelChainSource, find_strike_by_delta, nearest_strike_index
from data_factory.listing import listed_expiries, strike_grid, third_friday
from data_factory.surface import (
    DEFAULT_PARAMS,
    TAU_30D,
    SurfaceParams,
    atm_from_vix,
    atm_total_variance,
    implied_vol,
    ssvi_total_variance,
)

D = dt.date


# ---------------------------------------------------------------- listing calendar
def test_third_friday_hand_dates():
    assert third_friday(2018, 3) == D(2018, 3, 16)
    assert third_friday(2021, 1) == D(2021, 1, 15)
    assert third_friday(2015, 5) == D(2015, 5, 15)


def test_monthly_present_and_at_least_twelve_monthlies():
    listed = listed_expiries(D(2018, 2, 20))
    assert D(2018, 3, 16) in listed
    assert D(2018, 2, 16) not in listed  # already expired
    monthlies = [e for e in listed if e == third_friday(e.year, e.month)]
    assert len(monthlies) >= 12
    assert listed == sorted(set(listed))


def test_weekday_families_follow_their_start_dates():
    def weekdays(on: dt.date) -> set[int]:  # near-term only: far monthlies may be holiday-shifted
        return {e.weekday() for e in listed_expiries(on) if (e - on).days <= 30}

    assert weekdays(D(2004, 1, 5)) == {4}
    assert len(listed_expiries(D(2004, 1, 5))) == 12  # monthlies only before weeklies
    assert 2 not in weekdays(D(2014, 5, 1))
    assert 0 not in weekdays(D(2014, 5, 1))
    assert {0, 2, 4} <= weekdays(D(2017, 5, 1))
    assert 0 not in weekdays(D(2016, 3, 1))
    assert 2 in weekdays(D(2016, 3, 1))
    assert weekdays(D(2021, 6, 1)) == {0, 2, 4}
    assert weekdays(D(2023, 6, 1)) == {0, 1, 2, 3, 4}
    assert D(2022, 4, 14) in listed_expiries(D(2021, 6, 1))  # April 2022 monthly: Good Friday -> Thursday


def test_weeklies_cover_about_six_weeks_and_short_families_three():
    listed = listed_expiries(D(2017, 5, 1))
    fridays = [e for e in listed if e.weekday() == 4 and e != third_friday(e.year, e.month)]
    assert max(fridays) == D(2017, 6, 9)  # the last Friday within 42 days
    assert max(e for e in listed if e.weekday() == 2) == D(2017, 5, 17)  # within 21 days


def test_holiday_expiry_moves_to_previous_session():
    listed = listed_expiries(D(2018, 3, 1))
    assert D(2018, 3, 29) in listed
    assert D(2018, 3, 30) not in listed
    april_2014 = listed_expiries(D(2014, 4, 1))
    assert D(2014, 4, 17) in april_2014
    assert D(2014, 4, 18) not in april_2014
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start="2017-01-01", end="2020-12-31")
    sessions = set(cal.sessions.date)
    for on in (D(2017, 11, 1), D(2018, 12, 1), D(2019, 5, 10)):
        assert all(e in sessions for e in listed_expiries(on) if e.year <= 2020)


# ---------------------------------------------------------------- strike grid
def test_strike_grid_spacing_hand_worked():
    grid = strike_grid(270.3)
    # $1 from ceil(0.85*270.3)=230 to floor(1.15*270.3)=310; $5 from 140 (>= 135.15) to 405 (<= 405.45)
    assert grid[0] == 140.0
    assert grid[-1] == 405.0
    assert len(grid) == 18 + 81 + 19
    steps = np.diff(grid)
    fine = (grid[:-1] >= 230) & (grid[1:] <= 310)
    assert np.all(steps[fine] == 1.0)
    assert np.all(steps[~fine] == 5.0)
    assert np.all(grid[(grid < 230) | (grid > 310)] % 5 == 0)


# ---------------------------------------------------------------- surface
def test_atm_30d_anchor_and_term_structure_mean_reverts():
    atm = float(atm_from_vix(15.0))
    assert implied_vol(0.0, TAU_30D, atm) == pytest.approx(atm, abs=1e-12)
    low = implied_vol(0.0, np.array([2, 30, 365]) / 365, atm)
    assert low[0] < low[1] < low[2] < DEFAULT_PARAMS.long_run_vol  # calm: upward sloping
    high = implied_vol(0.0, np.array([2, 30, 365]) / 365, float(atm_from_vix(40.0)))
    assert high[0] > high[1] > high[2] > DEFAULT_PARAMS.long_run_vol  # stressed: inverted


def test_vix_is_the_30d_variance_swap_of_the_smile():
    """Independent check: Carr-Madan integral of BSM OTM prices (scipy quad) over the chain's IVs."""
    for vix in (12.0, 20.0, 35.0):
        atm = float(atm_from_vix(vix))
        assert 0.75 * vix / 100 < atm < vix / 100  # convexity adjustment is positive and small

        def otm_over_k2(strike: float, atm: float = atm) -> float:
            k = np.log(strike)
            sigma = float(implied_vol(k, TAU_30D, atm))
            return float(bsm_price(1.0, strike, TAU_30D, 0.0, 0.0, sigma, strike >= 1.0)) / strike**2

        total = quad(otm_over_k2, 1e-4, 1.0, limit=400)[0] + quad(otm_over_k2, 1.0, 20.0, limit=400)[0]
        assert np.sqrt(2.0 * total / TAU_30D) * 100 == pytest.approx(vix, abs=0.05)


def test_skew_and_smaller_call_wing():
    atm = float(atm_from_vix(18.0))
    sd = atm * np.sqrt(TAU_30D)
    iv = implied_vol(np.array([-2, -1, 0, 1, 2]) * sd, TAU_30D, atm)
    assert iv[0] > iv[1] > iv[2] > iv[3]  # put skew rising in -log-moneyness
    assert iv[0] - iv[2] > 2 * abs(iv[4] - iv[2])  # call wing much smaller than the put wing


@pytest.mark.parametrize("vix", [10.0, 18.0, 45.0, 80.0])
def test_surface_free_of_butterfly_and_calendar_arbitrage(vix):
    """Gatheral's density condition g(k) >= 0 per slice and dw/dtau >= 0 at fixed k."""
    atm = float(atm_from_vix(vix))
    k = np.linspace(-1.5, 0.8, 4601)
    taus = np.array([0.5 / 365, 1 / 365, 7 / 365, 30 / 365, 90 / 365, 1.0, 2.0])
    w_prev = np.zeros_like(k)
    for tau in taus:
        w = ssvi_total_variance(k, atm_total_variance(tau, atm, DEFAULT_PARAMS), DEFAULT_PARAMS)
        w1, w2 = np.gradient(w, k), np.gradient(np.gradient(w, k), k)
        g = (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2
        assert g[2:-2].min() > -1e-6
        assert np.all(w >= w_prev)
        w_prev = w


def test_surface_params_reject_arbitrageable_skew():
    with pytest.raises(ConfigError, match="skew_slope"):
        SurfaceParams(skew_slope=0.45)
    with pytest.raises(ConfigError, match="dividend_yield"):
        SurfaceParams(dividend_yield=0.2)


# ---------------------------------------------------------------- chains
def _inputs() -> tuple[pd.Series, pd.DataFrame]:
    """SPY-like daily closes at 16:00 ET from arch (2017-2018) plus one intraday day (2018-02-06)."""
    from arch.data import sp500, vix

    closes = sp500.load()["Close"].loc["2017-01-01":"2018-12-31"] / 10.0
    index = pd.DatetimeIndex(closes.index).tz_localize(NY_TZ) + pd.Timedelta(hours=16)
    spot = pd.Series(closes.to_numpy(), index=index)
    day = spot.index[spot.index.normalize() == pd.Timestamp("2018-02-06", tz=NY_TZ)][0]
    prev, close = spot[spot.index < day].iloc[-1], spot[day]
    minutes = pd.date_range("2018-02-06 09:35", "2018-02-06 15:55", freq="5min", tz=NY_TZ)
    path = prev + (close - prev) * np.sin(np.linspace(0, 1, len(minutes)) * 2.5)
    spot = pd.concat([spot, pd.Series(path, index=minutes)]).sort_index()
    frame = vix.load().loc["2016-12-01":"2018-12-31", ["vix"]].dropna()
    return spot, frame


@pytest.fixture(scope="module")
def source() -> ModelChainSource:
    return ModelChainSource(*_inputs())


STAMPS = [pd.Timestamp(s, tz=NY_TZ) for s in ("2017-06-14 16:00", "2018-02-06 10:30", "2018-02-06 16:00",
                                               "2018-10-24 16:00", "2018-12-24 16:00")]


def _all_slices(src: ModelChainSource):
    for ts in STAMPS:
        snap = src.snapshot(ts, 0, 60)
        assert snap.expiries
        for sl in snap.slices.values():
            yield ts, snap, sl


def test_source_implements_chain_source(source):
    assert isinstance(source, ChainSource)


def test_quotes_well_formed_and_spreads_widen(source):
    for _, _snap, sl in _all_slices(source):
        assert np.all(np.diff(sl.strikes) > 0)
        assert sl.tau > 0
        for side in ("call", "put"):
            bid, ask = getattr(sl, f"{side}_bid"), getattr(sl, f"{side}_ask")
            assert np.all(bid >= 0)
            assert np.all(ask - bid >= 0.01 - 1e-9)
            assert np.all(getattr(sl, f"{side}_oi") >= 0)
            assert np.all(getattr(sl, f"{side}_volume") >= 0)
    sl = source.snapshot(STAMPS[0], 28, 40).slices
    first = next(iter(sl.values()))
    atm = nearest_strike_index(first, source.spot_at(STAMPS[0]))
    far = nearest_strike_index(first, 0.85 * source.spot_at(STAMPS[0]))
    atm_spread = first.put_ask[atm] - first.put_bid[atm]
    rel = (first.put_ask - first.put_bid) / (first.put_ask + first.put_bid)
    assert rel[far] > rel[atm]  # relative spread widens away from the money and for cheaper options
    assert first.put_oi[atm] > first.put_oi[0]
    long_dated = source.expiry_slice(STAMPS[0], listed_expiries(STAMPS[0].date())[-1])
    assert long_dated.put_ask[nearest_strike_index(long_dated, first.strikes[atm])] - \
        long_dated.put_bid[nearest_strike_index(long_dated, first.strikes[atm])] > atm_spread


def test_static_no_arbitrage_on_generated_chains(source):
    p = source.params
    for _ts, snap, sl in _all_slices(source):
        model_calls = bsm_price(snap.spot, sl.strikes, sl.tau, p.rate, p.dividend_yield, sl.call_iv, True)
        assert np.all(np.diff(model_calls) <= 1e-10)
        slopes = np.diff(model_calls) / np.diff(sl.strikes)
        assert np.all(np.diff(slopes) >= -1e-9)
        mids = 0.5 * (sl.call_bid + sl.call_ask)
        assert np.all(np.diff(mids) <= 0.011)
        mid_slopes = np.diff(mids) / np.diff(sl.strikes)
        assert np.all(np.diff(mid_slopes) >= -0.021)
        parity = snap.spot * np.exp(-p.dividend_yield * sl.tau) - sl.strikes * np.exp(-p.rate * sl.tau)
        gap = np.abs(mids - 0.5 * (sl.put_bid + sl.put_ask) - parity)
        half_spreads = 0.5 * (sl.call_ask - sl.call_bid + sl.put_ask - sl.put_bid)
        assert np.all(gap <= half_spreads + 1e-9)


def test_deltas_monotone_and_find_strike_by_delta(source):
    for _, _, sl in _all_slices(source):
        assert np.all(np.diff(sl.call_delta) <= 1e-12)
        assert np.all(np.diff(sl.put_delta) <= 1e-12)
        for target in (0.05, 0.10, 0.16, 0.25, 0.5):
            i = find_strike_by_delta(sl, OptionRight.PUT, target)
            assert abs(abs(sl.put_delta[i]) - target) == np.min(np.abs(np.abs(sl.put_delta) - target))
            j = find_strike_by_delta(sl, OptionRight.CALL, target)
            assert abs(sl.call_delta[j] - target) == np.min(np.abs(sl.call_delta - target))
    assert nearest_strike_index(sl, 0.0) == 0
    assert nearest_strike_index(sl, 1e6) == len(sl.strikes) - 1
    mid_strike = 0.5 * (sl.strikes[10] + sl.strikes[11]) - 0.01
    assert nearest_strike_index(sl, mid_strike) == 10


def test_marks_equal_slice_quotes(source):
    ts = STAMPS[1]
    snap = source.snapshot(ts, 0, 60)
    expiries, strikes, calls, expected = [], [], [], []
    for sl in list(snap.slices.values())[::3]:
        for i in (5, len(sl.strikes) // 2, len(sl.strikes) - 7):
            for right in OptionRight:
                q = sl.quote(float(sl.strikes[i]), right, "SPY", ts.to_pydatetime())
                expiries.append(sl.expiry), strikes.append(sl.strikes[i]), calls.append(right is OptionRight.CALL)
                expected.append((q.bid, q.ask, q.mid, q.iv, q.delta, q.gamma, q.theta, q.vega))
    m = source.marks(ts, np.array(expiries, dtype="datetime64[D]"), np.array(strikes), np.array(calls))
    got = np.column_stack([m.bid, m.ask, m.mid, m.iv, m.delta, m.gamma, m.theta, m.vega])
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12, atol=1e-12)


def test_marks_against_quantlib_and_expired_at_intrinsic(source):
    ts = pd.Timestamp("2018-05-01 16:00", tz=NY_TZ)
    expiry = D(2018, 6, 15)
    spot, p = source.spot_at(ts), source.params
    m = source.marks(ts, np.array([expiry], dtype="datetime64[D]"), np.array([260.0]), np.array([False]))
    # trading time (data_factory.clock): 32 sessions May 2 .. Jun 15 (Memorial Day closed) and the 32 gaps
    # before them, 1.25 units each, over 315 units a year
    tau = 32 * 1.25 / 315.0
    assert source.expiry_slice(ts, expiry).tau == pytest.approx(tau, abs=1e-12)
    fwd = spot * np.exp((p.rate - p.dividend_yield) * tau)
    black = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Put, 260.0), fwd, float(m.iv[0]) * np.sqrt(tau),
                               np.exp(-p.rate * tau))
    assert m.bid[0] <= black.value() <= m.ask[0]
    assert m.delta[0] == pytest.approx(black.delta(spot), abs=1e-9)
    assert m.gamma[0] == pytest.approx(black.gamma(spot), abs=1e-9)
    after = pd.Timestamp("2018-06-15 16:00", tz=NY_TZ)
    dead = source.marks(after, np.array([expiry] * 2, dtype="datetime64[D]"), np.array([250.0, 290.0]),
                        np.array([True, True]))
    s_exp = source.spot_at(after)
    np.testing.assert_allclose(dead.mid, np.maximum(s_exp - np.array([250.0, 290.0]), 0.0), atol=1e-12)
    assert np.all(dead.bid == dead.ask)
    assert expiry not in source.expiries(after)


def test_deterministic_for_same_inputs():
    a, b = ModelChainSource(*_inputs()), ModelChainSource(*_inputs())
    for ts in STAMPS[:2]:
        sa, sb = a.snapshot(ts, 0, 45), b.snapshot(ts, 0, 45)
        assert sa.expiries == sb.expiries
        for e in sa.expiries:
            for name in ("strikes", "call_bid", "put_ask", "put_iv", "call_delta", "put_volume", "call_oi"):
                assert np.array_equal(getattr(sa.slices[e], name), getattr(sb.slices[e], name))


def test_vix_at_is_causal_and_hand_worked(source):
    spot, frame = _inputs()
    for ts in pd.date_range("2018-02-06 09:35", "2018-02-06 15:55", freq="35min", tz=NY_TZ):
        cut = ModelChainSource(spot[spot.index <= ts], frame[frame.index < ts.tz_localize(None).normalize()])
        assert cut.vix_at(ts) == source.vix_at(ts)
        assert cut.spot_at(ts) == source.spot_at(ts)
    ts = pd.Timestamp("2018-02-06 10:30", tz=NY_TZ)
    prev_close = spot[spot.index < pd.Timestamp("2018-02-06", tz=NY_TZ)].iloc[-1]
    vix_prev = frame.loc["2018-02-05", "vix"]  # 37.32, the Feb-5-2018 close
    expected = vix_prev * (spot[ts] / prev_close) ** -8.0
    assert source.vix_at(ts) == pytest.approx(expected, rel=1e-12)


def test_snapshot_window_and_errors(source):
    ts = STAMPS[0]
    snap = source.snapshot(ts, 30, 45)
    assert all(30 <= (e - ts.date()).days <= 45 for e in snap.expiries)
    assert snap.slices[snap.expiries[0]] is source.expiry_slice(ts, snap.expiries[0])  # cached
    with pytest.raises(DataError, match="tz-naive"):
        source.snapshot(pd.Timestamp("2018-03-01 16:00"))
    with pytest.raises(DataError, match="not listed"):
        source.expiry_slice(ts, D(2017, 6, 13))
    with pytest.raises(DataError, match="spot"):
        source.spot_at(pd.Timestamp("2016-01-04 16:00", tz=NY_TZ))


def test_cached_slices_are_read_only(source):
    sl = source.expiry_slice(STAMPS[0], source.expiries(STAMPS[0])[0])
    with pytest.raises(ValueError, match="read-only"):
        sl.call_bid[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        sl.strikes[0] = 1.0
