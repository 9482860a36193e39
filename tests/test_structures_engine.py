"""Each new structure through the full engine (Backtrader clock, driver, decision core,
simulated broker) on a constructed market, with closed-form answers: only its spec and its
selection rule are new — broker, exits, outputs are the ones the iron condor uses."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import CONTRACT_MULTIPLIER, ExitReason, LegRole, OptionRight, Side, Structure
from data_factory.calendar import sessions
from data_factory.scenario import ScenarioMarket, flat_bars

HOLD = {
    "exits.profit_target": False, "exits.loss_multiple": 10.0, "exits.dte_exit": 0, "exits.max_hold_days": 365,
    "strategy.max_positions": 1, "run.progress": False, "run.no_plot": True, "gates.use_regime_gate": False,
    "exits.breakout_exit": False, "backtest.cash": 100_000.0, "filters.vix_max": 40.0, "risk.max_trade_delta": 100.0,
}


def _fees(trade, closes: bool = False) -> float:
    n = sum(leg.qty for leg in trade.position.legs)
    return round(n * (0.65 + 0.03), 6) * (2 if closes else 1)


def _run(kind: str, vix, start: str = "2018-03-01", end: str = "2018-04-30", bars_from: dt.date | None = None,
         **extra):
    market = ScenarioMarket(flat_bars(bars_from or dt.date.fromisoformat(start), dt.date.fromisoformat(end), 250.0),
                            vix=vix)
    cfg = build_config(None, {"backtest.start": start, "backtest.end": end, "strategy.structure": kind, **HOLD,
                              **extra})
    return run_backtest(cfg, market=market)


def _legs_pnl(trade) -> float:
    pos = trade.position
    return sum(leg.side.sign * (px - leg.entry_price) * leg.qty * CONTRACT_MULTIPLIER
               for leg, px in zip(pos.legs, trade.exit_prices, strict=True))


def test_wide_condor_to_expiry_earns_credit_minus_fees_with_double_wings():
    res = _run("wide_iron_condor", 15.0)
    trades = [t for t in res.driver.broker.closed if t.exit_reason is ExitReason.EXPIRY]
    assert trades
    for t in trades:
        pos = t.position
        assert pos.structure is Structure.WIDE_IRON_CONDOR
        put_w = pos.leg(LegRole.SHORT_PUT).contract.strike - pos.leg(LegRole.LONG_PUT).contract.strike
        call_w = pos.leg(LegRole.LONG_CALL).contract.strike - pos.leg(LegRole.SHORT_CALL).contract.strike
        assert put_w == call_w == 10.0  # 2 x wing_min 5 on the $1 grid
        assert pos.max_loss == pytest.approx(10.0 - pos.credit)
        assert t.pnl == pytest.approx(pos.credit * CONTRACT_MULTIPLIER * pos.qty - _fees(t), abs=1e-6)


def test_put_broken_wing_butterfly_above_its_wings_keeps_the_credit():
    res = _run("put_broken_wing_butterfly", 25.0)
    trades = [t for t in res.driver.broker.closed if t.exit_reason is ExitReason.EXPIRY]
    assert trades
    for t in trades:
        pos = t.position
        near, body, far = (pos.leg(r).contract.strike for r in (LegRole.LONG_PUT, LegRole.SHORT_PUT,
                                                                  LegRole.LONG_PUT_FAR))
        assert near - body == 5.0 and body - far == 10.0 and near < 250.0
        assert pos.leg(LegRole.SHORT_PUT).qty == 2 * pos.qty
        assert pos.credit > 0
        assert pos.max_loss == pytest.approx(5.0 - pos.credit)  # far wing - near wing - credit
        assert t.pnl == pytest.approx(pos.credit * CONTRACT_MULTIPLIER * pos.qty - _fees(t), abs=1e-6)


def test_call_broken_wing_butterfly_settles_with_its_near_wing_in_the_money():
    res = _run("call_broken_wing_butterfly", 25.0)
    trades = [t for t in res.driver.broker.closed if t.exit_reason is ExitReason.EXPIRY]
    assert trades
    for t in trades:
        pos = t.position
        near, body, far = (pos.leg(r).contract.strike for r in (LegRole.LONG_CALL, LegRole.SHORT_CALL,
                                                                  LegRole.LONG_CALL_FAR))
        assert body - near == 5.0 and far - body == 10.0
        assert pos.max_loss == pytest.approx(5.0 - pos.credit)
        # at 250: + (250 - near)^+ - 2 (250 - body)^+ + credit, per share
        per_share = max(250.0 - near, 0.0) - 2 * max(250.0 - body, 0.0) + pos.credit
        assert t.pnl == pytest.approx(per_share * CONTRACT_MULTIPLIER * pos.qty - _fees(t), abs=1e-6)


def _low_vix() -> pd.DataFrame:
    """VIX 11 with one 14 print in January: IV rank 0 (< 20) and VIX < 12 from April on."""
    days = sessions(dt.date(2018, 1, 2), dt.date(2018, 6, 29))
    v = np.where(np.arange(len(days)) == 3, 14.0, 11.0)
    return pd.DataFrame({"vix": v, "is_proxy": False}, index=pd.DatetimeIndex(days, name="date"))


def test_calendar_is_closed_on_its_front_expiry_not_settled():
    res = _run("call_calendar", _low_vix(), "2018-04-09", "2018-05-31", bars_from=dt.date(2018, 1, 2))
    trades = res.driver.broker.closed
    assert trades
    first = trades[0]
    pos = first.position
    short, long_ = pos.leg(LegRole.SHORT_CALL), pos.leg(LegRole.LONG_CALL)
    assert pos.structure is Structure.CALL_CALENDAR
    assert short.contract.strike == long_.contract.strike == 250.0
    assert short.side is Side.SHORT and long_.side is Side.LONG and short.contract.right is OptionRight.CALL
    assert 21 <= (long_.contract.expiry - short.contract.expiry).days <= 42
    assert pos.credit == pytest.approx(short.entry_price - long_.entry_price)  # a debit
    assert pos.max_loss == pytest.approx(-pos.credit)  # buying power = the debit paid
    # never left to the venue: closed at the first bar of the front expiry day, the back month at its value
    assert first.exit_reason is ExitReason.FRONT_EXPIRY
    assert first.exit_time.date() == short.contract.expiry
    assert (first.exit_time.hour, first.exit_time.minute) == (9, 35)
    assert first.exit_prices[1] > 1.0  # a month of time value left, not intrinsic (0 at the money)
    assert first.pnl == pytest.approx(_legs_pnl(first) - _fees(first, closes=True), abs=1e-6)


def test_calendar_needs_its_entry_conditions():
    res = _run("call_calendar", 15.0)
    assert res.driver.broker.closed == []
    assert any("needs IV rank < 20" in line for line in res.driver.decisions)


def test_long_put_expires_worthless_above_its_strike():
    res = _run("long_put", 15.0)
    trades = [t for t in res.driver.broker.closed if t.exit_reason is ExitReason.EXPIRY]
    assert trades
    for t in trades:
        pos = t.position
        assert [leg.role for leg in pos.legs] == [LegRole.LONG_PUT] and pos.legs[0].contract.strike < 250.0
        assert pos.credit < 0 and pos.max_loss == pytest.approx(-pos.credit)
        assert t.pnl == pytest.approx(pos.credit * CONTRACT_MULTIPLIER * pos.qty - _fees(t), abs=1e-6)


ZERO_DTE = {"strategy.dte_min": 0, "strategy.dte_max": 0, "strategy.delta_low": 0.10, "strategy.delta_high": 0.30,
            "strategy.wing_min": 1.0, "strategy.wing_max": 3.0, "strategy.min_credit_ratio": 0.05,
            "exits.profit_target": False, "exits.breakout_exit": False, "gates.use_regime_gate": False,
            "backtest.cash": 100_000.0, "filters.vix_max": 40.0, "run.progress": False, "run.no_plot": True}


def _zero_dte(**extra):
    market = ScenarioMarket(flat_bars(dt.date(2017, 3, 1), dt.date(2017, 3, 17), 240.0), vix=13.0)
    return run_backtest(build_config(None, {"backtest.start": "2017-03-01", "backtest.end": "2017-03-17", **ZERO_DTE,
                                            **extra}), market=market)


def test_zero_dte_condor_enters_on_expiry_days_and_settles_at_that_close():
    res = _zero_dte()
    trades = res.driver.broker.closed
    # Monday / Wednesday / Friday expiries in March 2017: 1, 3, 6, 8, 10, 13, 15, 17
    assert [t.position.opened_at.date().day for t in trades] == [1, 3, 6, 8, 10, 13, 15, 17]
    for t in trades:
        pos = t.position
        assert pos.front_expiry == pos.opened_at.date() == t.exit_time.date()
        assert (pos.opened_at.hour, pos.opened_at.minute) == (10, 0)
        assert t.exit_reason is ExitReason.EXPIRY and (t.exit_time.hour, t.exit_time.minute) == (16, 0)
        assert pos.leg(LegRole.SHORT_PUT).contract.strike < 240.0 < pos.leg(LegRole.SHORT_CALL).contract.strike
        # priced in trading time: at VIX 13 the $1 shorts sit inside the ordinary 0.10-0.30 delta band
        shorts = [pos.leg(LegRole.SHORT_PUT).contract, pos.leg(LegRole.SHORT_CALL).contract]
        m = res.driver.chains.marks(pd.Timestamp(pos.opened_at), np.array([c.expiry for c in shorts], "datetime64[D]"),
                                    np.array([c.strike for c in shorts]), np.array([False, True]))
        assert np.all((np.abs(m.delta) >= 0.10) & (np.abs(m.delta) <= 0.30))
        assert pos.credit > 0
        assert t.pnl == pytest.approx(pos.credit * CONTRACT_MULTIPLIER * pos.qty - _fees(t), abs=1e-6)
    skipped = [line for line in res.driver.decisions if "T10:00" in line and "no listed expiry with 0-0 DTE" in line]
    assert len(skipped) == 5  # Tue / Thu sessions: no same-day expiry before 2022


def test_zero_dte_intraday_exit_time():
    res = _zero_dte(**{"exits.intraday_exit_time": "15:30"})
    trades = res.driver.broker.closed
    assert len(trades) == 8
    for t in trades:
        assert t.exit_reason is ExitReason.TIME_EXIT
        assert (t.exit_time.date(), t.exit_time.hour, t.exit_time.minute) == (t.position.opened_at.date(), 15, 30)
        assert t.pnl == pytest.approx(_legs_pnl(t) - _fees(t, closes=True), abs=1e-6)
