"""Hand-worked condor arithmetic and property tests of structure and bookkeeping."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backtest.run import run_backtest
from core.broker.protocol import OrderRequest, OrderStatus
from core.broker.sim import FeeModel, FillModel, SimBroker
from core.config import build_config
from core.dto import (
    CONTRACT_MULTIPLIER,
    ExitReason,
    ExpirySlice,
    FillModelKind,
    Leg,
    LegRole,
    OptionContract,
    OptionRight,
    OrderIntent,
    Side,
    StaticChain,
    Structure,
)
from strategies.structures.catalog import IRON_CONDOR
from strategies.structures.spec import SelectionParams, position_max_loss, select

EXP = dt.date(2018, 4, 20)


# A 240/245/265/270 condor: bids/asks chosen so mids are 0.60, 1.40, 1.10, 0.40.
QUOTES = {(240.0, OptionRight.PUT): (0.58, 0.62), (245.0, OptionRight.PUT): (1.38, 1.42),
          (265.0, OptionRight.CALL): (1.08, 1.12), (270.0, OptionRight.CALL): (0.38, 0.42)}


def _legs() -> tuple[Leg, ...]:
    def leg(role: LegRole, k: float, right: OptionRight, side: Side) -> Leg:
        return Leg(role, OptionContract("SPY", EXP, k, right), side, 1, 0.0)

    return (leg(LegRole.LONG_PUT, 240, OptionRight.PUT, Side.LONG),
            leg(LegRole.SHORT_PUT, 245, OptionRight.PUT, Side.SHORT),
            leg(LegRole.SHORT_CALL, 265, OptionRight.CALL, Side.SHORT),
            leg(LegRole.LONG_CALL, 270, OptionRight.CALL, Side.LONG))


def one_expiry_slice(expiry: dt.date, quotes: dict[tuple[float, OptionRight], tuple[float, float]]) -> ExpirySlice:
    """A hand-made slice listing exactly ``quotes`` (bid, ask by strike and right); Greeks zero."""
    strikes = np.array(sorted({k for k, _ in quotes}), float)

    def side(right: OptionRight, j: int) -> np.ndarray:
        return np.array([quotes.get((k, right), (0.0, 0.0))[j] for k in strikes])

    z = np.zeros(len(strikes))
    big = np.full(len(strikes), 1e4)
    return ExpirySlice(expiry, 36, 36 / 365, strikes,
                       side(OptionRight.CALL, 0), side(OptionRight.CALL, 1), z, z, z, z, z, big, big,
                       side(OptionRight.PUT, 0), side(OptionRight.PUT, 1), z, z, z, z, z, big, big)


def _venue(cash: float, ts: pd.Timestamp) -> SimBroker:
    broker = SimBroker(cash, FillModel(FillModelKind.MID), FeeModel(0.65, 0.0))
    broker.set_market(ts.to_pydatetime(), 250.0, 250.0, StaticChain({EXP: one_expiry_slice(EXP, QUOTES)}), {})
    return broker


def test_hand_worked_condor_credit_max_loss_breakevens():
    ts = pd.Timestamp("2018-03-15 10:00", tz="America/New_York")
    broker = _venue(10_000.0, ts)
    res = broker.submit(OrderRequest("P1", OrderIntent.OPEN, Structure.IRON_CONDOR, 2, _legs()))
    assert res.status is OrderStatus.FILLED
    op = broker.positions["P1"]
    assert op.position.credit == pytest.approx(1.50)  # 1.40 + 1.10 - 0.60 - 0.40
    assert op.position.max_loss == pytest.approx(3.50)  # 5 - 1.50
    assert op.reserved == pytest.approx(700.0)  # 3.50 x 100 x 2
    assert op.fees == pytest.approx(5.20)  # 8 contracts x $0.65
    assert broker.cash == pytest.approx(10_000 + 300.0 - 5.20)
    from analytics.payoff import breakevens

    strikes = np.array([240.0, 245.0, 265.0, 270.0])
    is_call = np.array([False, False, True, True])
    assert breakevens(strikes, is_call, np.array([1.0, -1.0, -1.0, 1.0]), 1.50) == (243.5, 266.5)
    assert position_max_loss(_legs(), 1, 1.50) == pytest.approx(3.5)
    # expiry at 242: put spread worth 3.00, calls worthless -> pnl = (1.50 - 3.00) x 200 - fees
    broker.set_market(pd.Timestamp("2018-04-20 16:00", tz="America/New_York").to_pydatetime(), 242.0, 242.0, None, {})
    (event,) = broker.end_session(None)
    trade = event.trade
    assert trade is not None and trade.exit_reason is ExitReason.EXPIRY
    assert trade.pnl == pytest.approx(-300.0 - 5.20)
    assert broker.shares == 200  # the short 245 put is assigned: 2 x 100 shares received at 242
    assert broker.cash + broker.shares * 242.0 == pytest.approx(10_000 - 300.0 - 5.20)
    # next session: the delivered shares are sold at the open (243); their P&L goes to P1
    broker.set_market(pd.Timestamp("2018-04-23 09:35", tz="America/New_York").to_pydatetime(), 243.0, 243.5, None, {})
    broker.start_session()
    assert broker.shares == 0
    assert broker.closed[0].share_pnl == pytest.approx(200.0)
    assert broker.closed[0].total_pnl == pytest.approx(-300.0 - 5.20 + 200.0)
    assert broker.cash == pytest.approx(10_000 - 300.0 - 5.20 + 200.0)
    assert broker.cash == pytest.approx(broker.start_cash + sum(e.amount for e in broker.ledger))


def test_fraction_fill_moves_half_of_the_half_spread_against_us():
    fm = FillModel(FillModelKind.FRACTION, 0.5)
    assert fm.price(1.38, 1.42, Side.SHORT, opening=True) == pytest.approx(1.39)  # sell below mid
    assert fm.price(0.58, 0.62, Side.LONG, opening=True) == pytest.approx(0.61)  # buy above mid
    assert FillModel(FillModelKind.CROSS).price(1.38, 1.42, Side.SHORT, opening=False) == pytest.approx(1.42)


@settings(max_examples=40, deadline=None)
@given(target=st.floats(0.10, 0.30), wing=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
       dte=st.sampled_from([0, 1, 2]))
def test_condor_strikes_ordered_and_max_loss_is_widest_wing_minus_credit(flat_chain, target, wing, dte):
    ts = pd.Timestamp("2018-03-01 10:00", tz="America/New_York")
    expiry = [e for e in flat_chain.expiries(ts) if (e - ts.date()).days >= 20][dte]
    params = SelectionParams(target, 0.05, 0.45, wing, wing + 5.0)
    cand, _why = select(IRON_CONDOR, flat_chain.expiry_slice(ts, expiry), params, "SPY", ts)
    assert cand is not None
    k = [cand.quote(n).strike for n in (LegRole.LONG_PUT, LegRole.SHORT_PUT, LegRole.SHORT_CALL, LegRole.LONG_CALL)]
    assert k == sorted(k) and len(set(k)) == 4
    put_width, call_width = k[1] - k[0], k[3] - k[2]
    assert cand.max_loss == pytest.approx(max(put_width, call_width) - cand.credit_mid)
    lo, hi = cand.breakevens
    assert lo == pytest.approx(k[1] - cand.credit_mid) and hi == pytest.approx(k[2] + cand.credit_mid)
    assert cand.max_loss >= 0


def test_bookkeeping_identities_over_a_real_run():
    res = run_backtest(build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-04-30",
                                           "run.progress": False}))
    broker, rec = res.driver.broker, res.driver.rec
    first = res.inputs.first_bar
    assert np.allclose(rec.cash[first:] + rec.positions_value[first:], rec.equity[first:])
    assert broker.cash == pytest.approx(broker.start_cash + sum(e.amount for e in broker.ledger))
    assert not broker.positions
    total_pnl = sum(t.pnl for t in broker.closed)
    assert rec.equity[-1] - broker.start_cash == pytest.approx(total_pnl, abs=1e-6)
    for t in broker.closed:  # a position's P&L is the sum of its legs' P&L less fees
        legs = sum(leg.side.sign * (px - leg.entry_price) * leg.qty * CONTRACT_MULTIPLIER
                   for leg, px in zip(t.position.legs, t.exit_prices, strict=True))
        assert t.pnl == pytest.approx(legs - t.fees, abs=1e-6)
