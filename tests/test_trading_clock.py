"""The variance ("business time") clock of the modelled chains (``data_factory.clock``): hand-worked
values, continuity and monotonicity, and what it means for same-day (0-DTE) options."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from data_factory.base import NY_TZ
from data_factory.bridge import VIX_OVERNIGHT
from data_factory.calendar import CALENDAR_LAST, session_open_close, sessions
from data_factory.clock import GAP_UNITS, UNITS_PER_YEAR, day_number, trading_clock
from data_factory.scenario import ScenarioMarket, flat_bars

CLOCK = trading_clock()
MINUTE = 60_000_000_000


def _ns(text: str) -> int:
    return int(pd.Timestamp(text, tz=NY_TZ).as_unit("ns").value)


def _u(text: str) -> float:
    return float(CLOCK.units(np.array([_ns(text)]))[0])


def _tau(text: str, expiry: dt.date) -> float:
    return float(CLOCK.tau(np.array([_ns(text)]), np.array([day_number(expiry)]))[0])


def test_normalisation_and_the_bridge_overnight_share():
    assert GAP_UNITS == VIX_OVERNIGHT == 0.25  # one constant: the embedded market's overnight share
    assert UNITS_PER_YEAR == 1.25 * 252


def test_ten_o_clock_on_an_expiry_day_has_six_of_six_and_a_half_hours_left():
    assert _tau("2017-03-03 10:00", dt.date(2017, 3, 3)) == pytest.approx((6 / 6.5) / (1.25 * 252), abs=1e-13)
    assert _u("2017-03-03 16:00") - _u("2017-03-03 10:00") == pytest.approx(6 / 6.5, abs=1e-9)
    assert _u("2017-03-03 12:45") - _u("2017-03-03 09:30") == pytest.approx(0.5, abs=1e-9)  # uniform in minutes


def test_a_weekend_gap_carries_exactly_a_quarter_unit():
    assert _u("2017-03-06 09:30") - _u("2017-03-03 16:00") == pytest.approx(0.25, abs=1e-9)
    # spread uniformly over the 65.5 calendar hours: Saturday 09:30 is 17.5 hours in
    assert _u("2017-03-04 09:30") - _u("2017-03-03 16:00") == pytest.approx(0.25 * 17.5 / 65.5, abs=1e-9)
    # a weeknight carries the same quarter unit as the weekend
    assert _u("2017-03-07 09:30") - _u("2017-03-06 16:00") == pytest.approx(0.25, abs=1e-9)
    # Friday 10:00 to Monday's close: 6/6.5 + 0.25 + 1
    assert _tau("2017-03-03 10:00", dt.date(2017, 3, 6)) * UNITS_PER_YEAR == pytest.approx(6 / 6.5 + 1.25, abs=1e-9)


def test_a_holiday_drops_its_session():
    # Good Friday 2018-03-30: Thursday's close to Monday's open is one gap
    assert _u("2018-04-02 09:30") - _u("2018-03-29 16:00") == pytest.approx(0.25, abs=1e-9)
    # Independence Day 2018 (Wednesday) after the 13:00 early close of July 3
    assert _u("2018-07-05 09:30") - _u("2018-07-03 13:00") == pytest.approx(0.25, abs=1e-9)
    assert _u("2018-07-05 16:00") - _u("2018-07-02 16:00") == pytest.approx(1 + 0.25 + 1 + 0.25, abs=1e-9)


def test_a_half_day_packs_its_unit_into_three_and_a_half_hours_and_expires_at_its_close():
    assert session_open_close(dt.date(2018, 11, 23))[1].hour == 13  # day after Thanksgiving
    assert _u("2018-11-23 11:15") - _u("2018-11-23 09:30") == pytest.approx(0.5, abs=1e-9)
    expiry = dt.date(2018, 11, 23)
    assert CLOCK.expiry_close_ns(np.array([day_number(expiry)]))[0] == _ns("2018-11-23 13:00")
    assert _tau("2018-11-23 12:00", expiry) * UNITS_PER_YEAR == pytest.approx(60 / 210, abs=1e-9)
    assert _tau("2018-11-23 13:00", expiry) == 0.0
    assert _tau("2018-11-23 14:00", expiry) < 0.0


def test_continuous_at_every_open_and_close():
    stamps = []
    for d in sessions(dt.date(2018, 6, 25), dt.date(2018, 7, 10)):  # a weekend, a half day and a holiday
        o, c = session_open_close(d)
        stamps += [o.value, c.value]
    t = np.array(stamps, dtype=np.int64)
    for eps in (1, 1_000):  # 1 ns and 1 us either side
        jump = CLOCK.units(t + eps) - CLOCK.units(t - eps)
        assert np.all(jump >= 0.0)
        assert np.max(jump) < 1e-9


def test_continuous_and_monotone_off_the_calendar():
    last = sessions(CALENDAR_LAST - dt.timedelta(days=10), CALENDAR_LAST)[-1]
    last_close = session_open_close(last)[1].value
    t = np.array([last_close - 1, last_close, last_close + 1, last_close + 86_400_000_000_000 * 365], np.int64)
    u = CLOCK.units(t)
    assert np.all(np.diff(u) >= 0) and u[2] - u[0] < 1e-9
    assert u[3] - u[1] == pytest.approx(UNITS_PER_YEAR, rel=1e-12)  # the long-run rate outside the calendar


def test_monotone_over_two_years_of_minutes_and_a_year_is_about_a_year():
    t = pd.date_range("2017-01-01", "2018-12-31 23:59", freq="1min", tz=NY_TZ).as_unit("ns").asi8
    u = CLOCK.units(t)
    step = np.diff(u)
    assert np.all(step >= 0.0)
    assert step.max() == pytest.approx(1 / 210, rel=1e-6)  # a half-day minute, the fastest the clock runs
    year = (CLOCK.units(np.array([_ns("2018-01-01 00:00")])) - CLOCK.units(np.array([_ns("2017-01-01 00:00")])))[0]
    assert year / UNITS_PER_YEAR == pytest.approx(1.0, abs=0.01)  # 251 sessions and gaps in 2017


def test_thirty_day_tau_stays_close_to_calendar_time():
    # 2018-03-01 16:00 -> 2018-03-29 (Thursday before Good Friday) and -> 2018-04-20
    for expiry in (dt.date(2018, 3, 29), dt.date(2018, 4, 20)):
        cal = (pd.Timestamp(expiry.isoformat() + " 16:00", tz=NY_TZ) - pd.Timestamp("2018-03-01 16:00", tz=NY_TZ))
        cal_years = cal / pd.Timedelta(days=365)
        assert _tau("2018-03-01 16:00", expiry) == pytest.approx(cal_years, rel=0.06)


def _zero_dte_source(vix: float = 13.0):
    market = ScenarioMarket(flat_bars(dt.date(2017, 3, 1), dt.date(2017, 3, 10), 240.0), vix=vix)
    return market.chains(market.intraday_bars(dt.date(2017, 3, 1), dt.date(2017, 3, 10)))


def test_zero_dte_at_the_money_put_is_black_scholes_with_the_trading_time_tau():
    source = _zero_dte_source()
    ts, expiry = pd.Timestamp("2017-03-08 10:00", tz=NY_TZ), dt.date(2017, 3, 8)
    tau = (6 / 6.5) / 315.0
    sl = source.expiry_slice(ts, expiry)
    assert sl.dte == 0 and sl.tau == pytest.approx(tau, abs=1e-13)
    m = source.marks(ts, np.array([expiry], "datetime64[D]"), np.array([240.0]), np.array([False]))
    spot, p = source.spot_at(ts), source.params
    black = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Put, 240.0),
                               spot * np.exp((p.rate - p.dividend_yield) * tau), float(m.iv[0]) * np.sqrt(tau),
                               np.exp(-p.rate * tau))
    assert m.bid[0] <= black.value() <= m.ask[0]
    assert black.value() == pytest.approx(0.52, abs=0.03)  # ~0.4 sd of a 10% vol over 6 of 6.5 hours
    assert m.delta[0] == pytest.approx(black.delta(spot), abs=1e-9)
    assert m.gamma[0] == pytest.approx(black.gamma(spot), abs=1e-9)
    assert m.theta[0] == pytest.approx(black.theta(spot, tau) / 365.0, rel=1e-9)  # per 1/365 variance-clock year


@pytest.mark.parametrize("day", [dt.date(2017, 3, 6), dt.date(2017, 3, 8), dt.date(2017, 3, 10)])  # Mon, Wed, Fri
def test_zero_dte_at_vix_13_has_tradable_dollar_strikes_on_both_sides(day):
    source = _zero_dte_source(13.0)
    sl = source.expiry_slice(pd.Timestamp(f"{day} 10:00", tz=NY_TZ), day)
    fine = np.isclose(sl.strikes % 1.0, 0.0) & (np.abs(sl.strikes - 240.0) <= 10)
    band = lambda d: fine & (np.abs(d) >= 0.10) & (np.abs(d) <= 0.30)  # noqa: E731
    puts, calls = sl.strikes[band(sl.put_delta)], sl.strikes[band(sl.call_delta)]
    assert len(puts) and len(calls)
    assert puts.max() < 240.0 < calls.min()
    assert sl.put_bid[sl.strikes == puts.min()][0] > 0 and sl.call_bid[sl.strikes == calls.max()][0] > 0


def test_marks_path_equals_marks_across_a_half_day_expiry_close():
    market = ScenarioMarket(flat_bars(dt.date(2018, 11, 19), dt.date(2018, 11, 26), 270.0), vix=13.0)
    bars = market.intraday_bars(dt.date(2018, 11, 19), dt.date(2018, 11, 26))
    source = market.chains(bars)
    index = pd.DatetimeIndex(bars.index)
    index = index[(index >= pd.Timestamp("2018-11-21 15:00", tz=NY_TZ)) & (index <= pd.Timestamp("2018-11-26 10:00",
                                                                                                    tz=NY_TZ))]
    expiries = np.array([dt.date(2018, 11, 23)] * 2 + [dt.date(2018, 11, 30)] * 2, "datetime64[D]")
    strikes, calls = np.array([268.0, 272.0, 268.0, 272.0]), np.array([False, True, False, True])
    path = source.marks_path(index, expiries, strikes, calls)
    for i, ts in enumerate(index):
        one = source.marks(ts, expiries, strikes, calls)
        for name in ("bid", "ask", "mid", "iv", "delta", "gamma", "theta", "vega"):
            assert np.array_equal(getattr(path, name)[i], getattr(one, name)), (ts, name)
    at_close = int(np.flatnonzero(index == pd.Timestamp("2018-11-23 13:00", tz=NY_TZ))[0])
    assert np.all(path.bid[at_close, :2] == path.ask[at_close, :2])  # the half-day expiry is intrinsic at 13:00
    assert np.all(path.bid[at_close - 1, :2] < path.ask[at_close - 1, :2])  # and alive a bar before
    assert dt.date(2018, 11, 23) not in source.expiries(pd.Timestamp("2018-11-23 13:00", tz=NY_TZ))
    assert dt.date(2018, 11, 23) in source.expiries(pd.Timestamp("2018-11-23 12:55", tz=NY_TZ))
