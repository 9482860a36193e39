"""Scenario revaluation: QuantLib-pinned full revaluation, hand-worked IV moves, condor loss bound."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dto import Leg, LegRole, OptionContract, OptionRight, Side
from risk.scenarios import (
    FLASH_CRASH,
    REVALUE_COLUMNS,
    STANDARD_SCENARIOS,
    VIX_50,
    VOL_CRUSH,
    OptionBook,
    Scenario,
    revalue,
)


def _ql_price(spot: float, strike: float, days: int, r: float, q: float, vol: float, is_call: bool) -> float:
    today = ql.Date(2, 1, 2018)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike)
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + days))
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV()


def _condor(spot: float, put_short: float, wing: float, call_short: float, tau: float, n: int,
            ivs: tuple[float, float, float, float] = (0.24, 0.22, 0.15, 0.15)) -> OptionBook:
    return OptionBook(
        spot=spot, strikes=[put_short - wing, put_short, call_short, call_short + wing], taus=np.full(4, tau),
        is_call=[False, False, True, True], signed_qty=[n, -n, -n, n], ivs=ivs, r=0.02, q=0.015,
    )


def test_full_revaluation_matches_quantlib() -> None:
    book = OptionBook(spot=100.0, strikes=[95.0, 105.0], taus=[73 / 365, 73 / 365], is_call=[False, True],
                      signed_qty=[2, -1], ivs=[0.22, 0.18], r=0.03, q=0.01)
    rows = revalue(book, [FLASH_CRASH, VOL_CRUSH]).set_index("scenario")

    def value(spot: float, put_iv: float, call_iv: float) -> float:
        return 100 * (2 * _ql_price(spot, 95.0, 73, 0.03, 0.01, put_iv, False)
                      - _ql_price(spot, 105.0, 73, 0.03, 0.01, call_iv, True))

    v0 = value(100.0, 0.22, 0.18)
    assert rows["value"].iloc[0] == pytest.approx(v0, abs=1e-8)
    assert rows.loc[FLASH_CRASH.name, "pnl_full"] == pytest.approx(value(90.0, 0.22, 0.18) - v0, abs=1e-8)
    assert rows.loc[VOL_CRUSH.name, "pnl_full"] == pytest.approx(value(100.0, 0.154, 0.126) - v0, abs=1e-8)


def test_vix_50_moves_atm_to_half_and_steepens_skew_hand_worked() -> None:
    book = OptionBook(spot=100.0, strikes=[90.0, 110.0], taus=[0.1, 0.1], is_call=[False, True],
                      signed_qty=[-1, -1], ivs=[0.25, 0.18], atm_iv=0.20)
    ivs = VIX_50.shocked_ivs(book)
    # put: 0.25 + (0.50 - 0.20) + 0.5 * -ln(0.9);  call: 0.18 + 0.30 + 0.5 * -ln(1.1)
    np.testing.assert_allclose(ivs, [0.6026802578289132, 0.43234491009783753], rtol=0, atol=1e-15)
    # without a given ATM IV: leg IVs interpolated in log-moneyness at 0
    no_atm = OptionBook(spot=100.0, strikes=[95.0, 105.0], taus=[0.1, 0.1], is_call=[False, True],
                        signed_qty=[-1, -1], ivs=[0.22, 0.18])
    x0, x1 = math.log(0.95), math.log(1.05)
    assert no_atm.reference_atm_iv() == pytest.approx(0.22 + (0 - x0) / (x1 - x0) * (0.18 - 0.22), abs=1e-15)
    np.testing.assert_allclose(VOL_CRUSH.shocked_ivs(no_atm), [0.154, 0.126], atol=1e-15)
    assert Scenario("floor", iv_scale=0.01).shocked_ivs(no_atm).tolist() == [0.01, 0.01]


def test_short_condor_greek_signs_and_short_put_delta() -> None:
    g = _condor(270.0, 250.0, 5.0, 290.0, 35 / 365, 1).greeks()
    assert g.gamma < 0
    assert g.vega < 0
    assert g.theta > 0
    short_put = OptionBook(spot=270.0, strikes=[250.0], taus=[35 / 365], is_call=[False], signed_qty=[-1],
                           ivs=[0.2]).greeks()
    assert short_put.delta > 0


def test_revalue_rows_and_approximation_error() -> None:
    book = _condor(270.0, 250.0, 5.0, 290.0, 35 / 365, 2)
    table = revalue(book)
    assert tuple(table.columns) == REVALUE_COLUMNS
    assert table["scenario"].tolist() == [s.name for s in STANDARD_SCENARIOS]
    np.testing.assert_allclose(table["approx_error"], table["pnl_approx"] - table["pnl_full"])
    np.testing.assert_allclose(
        table["pnl_approx"], table["pnl_delta"] + table["pnl_gamma"] + table["pnl_vega"] + table["pnl_theta"]
    )
    # a small move: the delta-gamma error is third order, tiny against the P&L
    small = revalue(book, [Scenario("up 0.5%", spot_return=0.005)]).iloc[0]
    assert abs(small["approx_error"]) < 0.02 * abs(small["pnl_full"])
    big = table.set_index("scenario").loc[FLASH_CRASH.name]
    assert abs(big["approx_error"]) > abs(small["approx_error"])
    # one day of ageing: P&L close to theta
    day = revalue(book, [Scenario("1 day", days_forward=1.0)]).iloc[0]
    assert day["pnl_theta"] == pytest.approx(book.greeks().theta)
    assert day["pnl_full"] == pytest.approx(day["pnl_theta"], rel=0.05)


def test_book_from_dto_legs() -> None:
    exp = dt.date(2018, 3, 16)
    legs = [Leg(LegRole.SHORT_PUT, OptionContract("SPY", exp, 250.0, OptionRight.PUT), Side.SHORT, 3, 2.0),
            Leg(LegRole.LONG_CALL, OptionContract("SPY", exp, 295.0, OptionRight.CALL), Side.LONG, 3, 0.5)]
    book = OptionBook.from_legs(legs, 270.0, [0.2, 0.14], as_of=dt.date(2018, 2, 9), r=0.02, q=0.015)
    np.testing.assert_allclose(book.taus, [35 / 365, 35 / 365])
    assert book.signed_qty.tolist() == [-3.0, 3.0]
    assert book.is_call.tolist() == [False, True]


@settings(max_examples=40, deadline=None)
@given(
    spot=st.floats(200.0, 400.0),
    put_otm=st.floats(0.02, 0.15),
    call_otm=st.floats(0.02, 0.15),
    wing=st.sampled_from([1.0, 5.0, 10.0]),
    tau=st.floats(1 / 365, 60 / 365),
    iv=st.floats(0.08, 0.6),
    slope=st.floats(0.0, 0.3),
    n=st.integers(1, 10),
)
def test_short_condor_flash_crash_loss_is_bounded_by_put_width_minus_credit(
    spot: float, put_otm: float, call_otm: float, wing: float, tau: float, iv: float, slope: float, n: int
) -> None:
    put_short, call_short = float(round(spot * (1 - put_otm))), float(round(spot * (1 + call_otm)))
    strikes = np.array([put_short - wing, put_short, call_short, call_short + wing])
    smile = iv * (1.0 - slope * np.log(strikes / spot))  # IV falling in strike: no vertical-spread arbitrage
    book = _condor(spot, put_short, wing, call_short, tau, n, ivs=tuple(smile))
    credit = -book.value() / (100 * n)  # per share, at model prices
    row = revalue(book, [FLASH_CRASH, Scenario("crash + vol", spot_return=-0.10, atm_iv_target=0.8)])
    max_loss = (wing - credit) * 100 * n
    assert (-row["pnl_full"] <= max_loss + 1e-6).all()
