"""Hand-worked condor arithmetic and property tests of structure and bookkeeping."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backtest.run import run_backtest
from core.broker.sim import FeeModel, FillModel, SimBroker
from core.config import build_config
from core.dto import CONTRACT_MULTIPLIER, ExitReason, Leg, LegName, OptionContract, OptionRight, Side
from data_factory.chains import ModelChainSource
from data_factory.scenario import flat_bars
from strategies.iron_condor import build_condor, condor_breakevens, condor_max_loss

EXP = dt.date(2018, 4, 20)


def _legs() -> list[tuple[Leg, float, float]]:
    """A 240/245/265/270 condor: bids/asks chosen so mids are 0.60, 1.40, 1.10, 0.40."""
    def leg(name: LegName, k: float, right: OptionRight, side: Side) -> Leg:
        return Leg(name, OptionContract("SPY", EXP, k, right), side, 1, 0.0)

    return [(leg(LegName.LONG_PUT, 240, OptionRight.PUT, Side.LONG), 0.58, 0.62),
            (leg(LegName.SHORT_PUT, 245, OptionRight.PUT, Side.SHORT), 1.38, 1.42),
            (leg(LegName.SHORT_CALL, 265, OptionRight.CALL, Side.SHORT), 1.08, 1.12),
            (leg(LegName.LONG_CALL, 270, OptionRight.CALL, Side.LONG), 0.38, 0.42)]


def test_hand_worked_condor_credit_max_loss_breakevens():
    broker = SimBroker(10_000.0, FillModel("mid"), FeeModel(0.65, 0.0))
    ts = pd.Timestamp("2018-03-15 10:00", tz="America/New_York")
    op = broker.open(ts, "P1", "iron_condor", _legs(), qty=2, max_wing=5.0)
    assert op.position.credit == pytest.approx(1.50)  # 1.40 + 1.10 - 0.60 - 0.40
    assert op.position.max_loss == pytest.approx(3.50)  # 5 - 1.50
    assert op.reserved == pytest.approx(700.0)  # 3.50 x 100 x 2
    assert op.fees == pytest.approx(5.20)  # 8 contracts x $0.65
    assert broker.cash == pytest.approx(10_000 + 300.0 - 5.20)
    assert condor_breakevens(245, 265, 1.50) == (243.5, 266.5)
    assert condor_max_loss(5.0, 5.0, 1.50) == pytest.approx(3.5)
    # expiry at 242: put spread worth 3.00, calls worthless -> pnl = (1.50 - 3.00) x 200 - fees
    trade = broker.settle(ts, "P1", 242.0, ExitReason.EXPIRY)
    assert trade.pnl == pytest.approx(-300.0 - 5.20)
    assert broker.cash == pytest.approx(10_000 - 300.0 - 5.20)
    assert broker.cash == pytest.approx(broker.start_cash + sum(e.amount for e in broker.ledger))


def test_fraction_fill_moves_half_of_the_half_spread_against_us():
    fm = FillModel("fraction", 0.5)
    assert fm.price(1.38, 1.42, Side.SHORT, opening=True) == pytest.approx(1.39)  # sell below mid
    assert fm.price(0.58, 0.62, Side.LONG, opening=True) == pytest.approx(0.61)  # buy above mid
    assert FillModel("cross").price(1.38, 1.42, Side.SHORT, opening=False) == pytest.approx(1.42)


_CHAIN = ModelChainSource(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 2), 250.0)["close"],
                          pd.DataFrame({"vix": [15.0]}, index=pd.DatetimeIndex(["2018-02-28"])))


@settings(max_examples=40, deadline=None)
@given(target=st.floats(0.10, 0.30), wing=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
       dte=st.sampled_from([0, 1, 2]))
def test_condor_strikes_ordered_and_max_loss_is_widest_wing_minus_credit(target, wing, dte):
    ts = pd.Timestamp("2018-03-01 10:00", tz="America/New_York")
    expiry = [e for e in _CHAIN.expiries(ts) if (e - ts.date()).days >= 20][dte]
    cand, _why = build_condor(_CHAIN.expiry_slice(ts, expiry), target, 0.05, 0.45, wing, wing + 5.0)
    assert cand is not None
    k = [cand.legs[n].strike for n in (LegName.LONG_PUT, LegName.SHORT_PUT, LegName.SHORT_CALL, LegName.LONG_CALL)]
    assert k == sorted(k) and len(set(k)) == 4
    assert cand.max_loss == pytest.approx(max(cand.put_width, cand.call_width) - cand.credit_mid)
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
