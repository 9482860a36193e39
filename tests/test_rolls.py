"""Rolls and adjustments through the full engine on constructed markets, with closed-form
answers: when the roll fires (the first bar of the first session with DTE < 7), where it goes
(the listed expiry nearest the entry window's middle, later than the one left), that the two
positions are linked by id, and that the adjusted condor keeps its untested side."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import load_inputs, run_backtest
from core.config import build_config
from core.dto import CONTRACT_MULTIPLIER, Action, ExitReason, LegRole, OptionRight, ReasonCode
from core.outputs.backtest import trades_frame
from data_factory.calendar import sessions
from data_factory.listing import listed_expiries
from data_factory.scenario import ScenarioMarket, flat_bars, path_bars
from strategies.structures.catalog import IRON_CONDOR
from strategies.structures.spec import SelectionParams, select

KEEP = {"exits.profit_target": False, "exits.loss_multiple": 10.0, "exits.max_hold_days": 365,
        "strategy.max_positions": 1, "run.progress": False, "run.no_plot": True, "gates.use_regime_gate": False}


def _legs_pnl(trade) -> float:
    pos = trade.position
    return sum(leg.side.sign * (px - leg.entry_price) * leg.qty * CONTRACT_MULTIPLIER
               for leg, px in zip(pos.legs, trade.exit_prices, strict=True))


def test_dte_roll_reopens_the_condor_in_the_next_expiry_linked_by_id():
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 5, 31), 250.0), vix=15.0)
    cfg = build_config(None, {"backtest.start": "2018-03-01", "backtest.end": "2018-05-31", **KEEP,
                              "exits.breakout_exit": False, "exits.on_dte": "roll"})
    res = run_backtest(cfg, market=market)
    trades = res.driver.broker.closed
    assert [t.exit_reason for t in trades[:-1]] == [ExitReason.DTE_EXIT] * (len(trades) - 1) and len(trades) >= 3
    for old, new in zip(trades, trades[1:], strict=False):
        expiry = old.position.front_expiry
        # closed form: the first session whose DTE is below 7, at its first bar (09:35)
        days = [d.date() for d in sessions(old.position.opened_at.date(), expiry)]
        roll_day = next(d for d in days if (expiry - d).days < 7)
        assert old.exit_time.date() == roll_day and (old.exit_time.hour, old.exit_time.minute) == (9, 35)
        # reopened on the same bar, linked, same size, on the listed expiry nearest 37.5 DTE after the old one
        assert new.position.opened_at == old.exit_time
        assert new.entry_extra["scores"]["rolled_from"] == old.position.position_id
        assert new.position.qty == old.position.qty
        window = [e for e in listed_expiries(roll_day) if 30 <= (e - roll_day).days <= 45 and e > expiry]
        assert new.position.front_expiry == min(window, key=lambda e: (abs((e - roll_day).days - 37.5), e))
        assert old.pnl == pytest.approx(_legs_pnl(old) - 2 * 4 * (0.65 + 0.03), abs=1e-6)
    # one ROLL record per roll, coded, naming the old position
    rolls = [r for r in res.driver.recorder.records if r.action is Action.ROLL]
    assert [r.position_id for r in rolls] == [t.position.position_id for t in trades[:-1]]
    assert all(r.codes == (ReasonCode.ROLL,) for r in rolls)
    # never flat in between: one position open on every bar after the first entry
    first = int(np.argmax(res.driver.rec.open_positions > 0))
    assert (res.driver.rec.open_positions[first:-1] == 1).all()
    equity = res.driver.rec.equity[res.inputs.first_bar:]
    assert equity[-1] - cfg.backtest.cash == pytest.approx(sum(t.pnl for t in trades), abs=1e-6)
    # trades.csv links each replacement to the position it replaced
    frame = trades_frame(trades)
    assert frame["rolled_from"].tolist() == ["", *[t.position.position_id for t in trades[:-1]]]


def test_breakout_adjust_rolls_the_call_side_away_and_keeps_the_puts():
    jump = pd.Timestamp("2018-03-12 11:00", tz="America/New_York")

    def price(idx: pd.DatetimeIndex) -> np.ndarray:
        return np.where(idx >= jump, 262.0, 250.0)

    market = ScenarioMarket(path_bars(dt.date(2018, 2, 1), dt.date(2018, 3, 23), price), vix=15.0)
    cfg = build_config(None, {"backtest.start": "2018-03-01", "backtest.end": "2018-03-23", **KEEP,
                              "exits.on_breakout": "adjust"})
    inputs = load_inputs(cfg, market)
    res = run_backtest(cfg, inputs=inputs)
    old, new = res.driver.broker.closed[:2]
    assert old.exit_reason is ExitReason.BREAKOUT
    assert old.position.leg(LegRole.SHORT_CALL).contract.strike < 262.0  # the jump went through it
    assert pd.Timestamp(old.exit_time) == jump  # the first bar whose close breaks band and strike
    assert new.position.opened_at == old.exit_time
    assert new.entry_extra["scores"]["rolled_from"] == old.position.position_id
    keep = {r: old.position.leg(r).contract.strike for r in (LegRole.SHORT_PUT, LegRole.LONG_PUT)}
    assert {r: new.position.leg(r).contract.strike for r in keep} == keep
    assert new.position.front_expiry == old.position.front_expiry  # same expiry: rolled away, not out
    # the call side is what the strike rules pick on that bar's chain with the puts pinned
    sl = inputs.chains.expiry_slice(jump, old.position.front_expiry)
    s = cfg.strategy
    want, _ = select(IRON_CONDOR, sl, SelectionParams(s.effective_target_delta, s.delta_low, s.delta_high,
                                                      s.wing_min, s.wing_max, {OptionRight.PUT: 0.0}),
                     "SPY", jump.to_pydatetime(), fixed=keep)
    assert want is not None
    for role in (LegRole.SHORT_CALL, LegRole.LONG_CALL):
        assert new.position.leg(role).contract.strike == want.quote(role).strike
    assert new.position.leg(LegRole.SHORT_CALL).contract.strike > 262.0
    adjusts = [r for r in res.driver.recorder.records if r.action is Action.ROLL]
    assert len(adjusts) == 1 and adjusts[0].codes == (ReasonCode.ADJUST,)
