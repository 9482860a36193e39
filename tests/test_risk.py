"""Position Greeks, RiskManager caps / sizing and the daily drawdown stop (hand-worked numbers)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.pricing import bsm_greeks
from core.dto import Leg, LegRole, OptionContract, OptionRight, Position, Side, Structure
from data_factory.base import ContractMarks
from risk.drawdown import DrawdownState, check_drawdown
from risk.greeks import BookGreeks, LegGreeks, beta_weighted_delta, portfolio_greeks, position_greeks
from risk.manager import RiskLimits, RiskManager, risk_budget_qty

EXPIRY = dt.date(2018, 3, 16)


def _leg(name: LegRole, strike: float, right: OptionRight, side: Side, qty: int = 1) -> Leg:
    return Leg(name, OptionContract("SPY", EXPIRY, strike, right), side, qty, 1.0)


def _condor(qty: int = 1) -> Position:
    legs = (
        _leg(LegRole.LONG_PUT, 245.0, OptionRight.PUT, Side.LONG, qty),
        _leg(LegRole.SHORT_PUT, 250.0, OptionRight.PUT, Side.SHORT, qty),
        _leg(LegRole.SHORT_CALL, 290.0, OptionRight.CALL, Side.SHORT, qty),
        _leg(LegRole.LONG_CALL, 295.0, OptionRight.CALL, Side.LONG, qty),
    )
    return Position("p1", Structure.IRON_CONDOR, legs, qty, dt.datetime(2018, 2, 9, 15, 0), 1.2, 3.8)


def _condor_marks(spot: float = 270.0) -> ContractMarks:
    g = bsm_greeks(spot, [245.0, 250.0, 290.0, 295.0], 35 / 365, 0.02, 0.018, [0.20, 0.19, 0.14, 0.14],
                   [False, False, True, True])
    return ContractMarks(g.price, g.price, g.price, np.zeros(4), g.delta, g.gamma, g.theta, g.vega)


# ------------------------------------------------------------------ Greeks
def test_short_put_position_greeks_hand_worked() -> None:
    legs = [_leg(LegRole.SHORT_PUT, 250.0, OptionRight.PUT, Side.SHORT, qty=2)]
    marks = LegGreeks(np.array([-0.30]), np.array([0.02]), np.array([-0.05]), np.array([0.15]))
    g = position_greeks(legs, marks)
    # -0.30 * 100 * 2 * (-1) = +60 shares; gamma -4; theta +10 per day; vega -30 per vol point
    assert g == BookGreeks(delta=pytest.approx(60.0), gamma=pytest.approx(-4.0), vega=pytest.approx(-30.0),
                           theta=pytest.approx(10.0))


def test_short_condor_signs_and_contract_marks_input() -> None:
    g = position_greeks(_condor(), _condor_marks())
    assert g.gamma < 0
    assert g.vega < 0
    assert g.theta > 0
    short_put = position_greeks([_condor().leg(LegRole.SHORT_PUT)], LegGreeks(*(np.array([x]) for x in
                                (-0.2, 0.01, -0.03, 0.2))))
    assert short_put.delta > 0
    two = position_greeks(_condor(qty=2), _condor_marks())
    assert two.vega == pytest.approx(2 * g.vega, rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 0.1), st.floats(-0.5, 0), st.floats(0, 0.5),
                          st.integers(1, 5), st.booleans()), min_size=1, max_size=6))
def test_position_greeks_are_sum_of_single_legs(rows: list) -> None:
    legs = [_leg(LegRole.SHORT_PUT, 100.0 + i, OptionRight.PUT, Side.LONG if long else Side.SHORT, qty)
            for i, (*_, qty, long) in enumerate(rows)]
    arr = np.array([r[:4] for r in rows], dtype=float)
    marks = LegGreeks(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    total = position_greeks(legs, marks)
    parts = [position_greeks([leg], LegGreeks(*(arr[i:i + 1, j] for j in range(4)))) for i, leg in enumerate(legs)]
    assert total.delta == pytest.approx(sum(p.delta for p in parts), abs=1e-9)
    assert total.gamma == pytest.approx(sum(p.gamma for p in parts), abs=1e-9)
    assert total.theta == pytest.approx(sum(p.theta for p in parts), abs=1e-9)
    assert total.vega == pytest.approx(sum(p.vega for p in parts), abs=1e-9)


def test_portfolio_greeks_adds_positions_and_hedge_shares() -> None:
    one = position_greeks(_condor(), _condor_marks())
    book = portfolio_greeks([(_condor(), _condor_marks()), (_condor(qty=3), _condor_marks())], hedge_shares=-25)
    assert book.delta == pytest.approx(4 * one.delta - 25)
    assert book.vega == pytest.approx(4 * one.vega)
    with pytest.raises(ValueError, match="one value per leg"):
        position_greeks(_condor(), LegGreeks(*(np.zeros(3) for _ in range(4))))


def test_beta_weighted_delta() -> None:
    # 100 QQQ-share deltas at $300, beta 1.2 to SPY at $400 -> 90 SPY shares
    assert beta_weighted_delta(100.0, 300.0, 1.2, 400.0) == pytest.approx(90.0)


# ------------------------------------------------------------------ sizing and caps
def test_risk_budget_qty_floors() -> None:
    assert risk_budget_qty(500.0, 250.0) == 2
    assert risk_budget_qty(499.99, 250.0) == 1
    assert risk_budget_qty(0.3, 0.1) == 3  # float rounding of 0.3 / 0.1 = 2.9999999999999996
    assert risk_budget_qty(100.0, 250.0) == 0


def test_check_entry_final_size_is_min_of_fuzzy_and_risk_budget() -> None:
    rm = RiskManager()
    unit = BookGreeks(delta=2.0, gamma=-1.0, vega=-10.0, theta=3.0)
    # 2% of 60k = 1200 budget; 380 max loss per condor -> Q_risk = 3
    v = rm.check_entry(unit, BookGreeks(), qty=5, max_loss_per_contract=380.0, equity=60_000.0)
    assert (v.allowed, v.qty) == (True, 3)
    assert v.reasons == ("qty 5 -> 3: risk budget $1200.00 allows 3",)
    v2 = rm.check_entry(unit, BookGreeks(), qty=2, max_loss_per_contract=380.0, equity=60_000.0)
    assert (v2.allowed, v2.qty, v2.reasons) == (True, 2, ())
    v3 = rm.check_entry(unit, BookGreeks(), qty=2, max_loss_per_contract=380.0, equity=15_000.0)
    assert not v3.allowed
    assert v3.qty == 0
    assert "below the max loss of one unit" in v3.reasons[0]


def test_portfolio_vega_cap_blocks_exactly_the_breaching_trade() -> None:
    strict = RiskManager(RiskLimits(shrink_to_fit=False))
    unit = BookGreeks(vega=-10.0)
    kw = {"max_loss_per_contract": 100.0, "equity": 1e6}
    at_cap = strict.check_entry(unit, BookGreeks(vega=-450.0), qty=5, **kw)
    assert (at_cap.allowed, at_cap.qty) == (True, 5)  # -500 is at the cap, not beyond
    over = strict.check_entry(unit, BookGreeks(vega=-450.0), qty=6, **kw)
    assert not over.allowed
    assert over.reasons == ("portfolio vega -510.0 would exceed cap 500",)
    one = strict.check_entry(BookGreeks(vega=-20.0), BookGreeks(vega=-500.0), qty=1, **kw)
    assert one.reasons == ("portfolio vega -520.0 would exceed cap 500",)
    shrink = RiskManager().check_entry(unit, BookGreeks(vega=-450.0), qty=6, **kw)
    assert (shrink.allowed, shrink.qty) == (True, 5)
    assert shrink.reasons == ("qty 6 -> 5: portfolio vega -510.0 would exceed cap 500",)


def test_per_trade_delta_and_vega_caps() -> None:
    rm = RiskManager()
    kw = {"max_loss_per_contract": 100.0, "equity": 1e6}
    assert rm.check_entry(BookGreeks(delta=30.0), BookGreeks(), qty=1, **kw).allowed
    v = rm.check_entry(BookGreeks(delta=-31.0, vega=-101.0), BookGreeks(), qty=1, **kw)
    assert not v.allowed
    assert v.reasons == ("trade delta -31.0 would exceed cap 30", "trade vega -101.0 would exceed cap 100")
    assert rm.check_entry(BookGreeks(delta=12.0), BookGreeks(), qty=3, **kw).qty == 2  # 36 > 30 -> 2 lots


def test_risk_reducing_trade_passes_an_already_breached_cap() -> None:
    rm = RiskManager()
    kw = {"max_loss_per_contract": 100.0, "equity": 1e6}
    v = rm.check_entry(BookGreeks(delta=-20.0), BookGreeks(delta=250.0), qty=1, **kw)
    assert (v.allowed, v.qty) == (True, 1)
    worse = rm.check_entry(BookGreeks(delta=5.0), BookGreeks(delta=250.0), qty=1, **kw)
    assert worse.reasons == ("portfolio delta 255.0 would exceed cap 200",)
    assert rm.check_book(BookGreeks(delta=250.0, gamma=-10.0), short_dte_book_gamma=-30.0) == (
        "portfolio delta 250.0 exceeds cap 200", "short-DTE gamma -30.0 exceeds cap 25")


def test_short_dte_gamma_limit_applies_only_near_expiry() -> None:
    rm = RiskManager()
    kw = {"max_loss_per_contract": 100.0, "equity": 1e6, "short_dte_book_gamma": -20.0}
    unit = BookGreeks(gamma=-6.0)
    near = rm.check_entry(unit, BookGreeks(gamma=-20.0), qty=1, dte=5, **kw)
    assert near.reasons == ("short-DTE gamma -26.0 would exceed cap 25",)
    assert not near.allowed
    far = rm.check_entry(unit, BookGreeks(gamma=-20.0), qty=1, dte=30, **kw)
    assert (far.allowed, far.qty) == (True, 1)


def test_drawdown_stop_blocks_entries() -> None:
    v = RiskManager().check_entry(BookGreeks(), BookGreeks(), 1, 100.0, 1e5, drawdown_stop=True)
    assert not v.allowed
    assert v.reasons == ("daily drawdown stop is active: no new entries today",)


def test_risk_limits_defaults_and_validation() -> None:
    lim = RiskLimits()
    assert (lim.max_trade_delta, lim.max_trade_vega, lim.max_portfolio_delta, lim.max_portfolio_gamma,
            lim.max_portfolio_vega, lim.max_daily_drawdown, lim.max_account_risk_per_trade) == (
        30.0, 100.0, 200.0, 50.0, 500.0, 0.02, 0.02)
    with pytest.raises(ValueError, match="max_portfolio_vega"):
        RiskLimits(max_portfolio_vega=0.0)


# ------------------------------------------------------------------ daily drawdown stop
def test_drawdown_stop_trips_latches_and_lifts_next_day() -> None:
    def step(sod: float, e: float, halted: bool) -> DrawdownState:
        return check_drawdown(sod, e, halted, limit=0.02, flatten=True)

    assert step(100_000.0, 98_500.0, False).tripped is False  # 1.5%
    s = step(100_000.0, 98_000.0, False)  # exactly 2%
    assert (s.tripped, s.trips_now, s.flatten_now) == (True, True, True)
    s = step(100_000.0, 99_500.0, True)  # latched for the day, flattened once
    assert (s.tripped, s.trips_now, s.flatten_now) == (True, False, False)
    assert step(99_500.0, 99_000.0, False).tripped is False  # next day: the stop lifted
