"""Golden scenarios with closed-form answers, each through the full engine (Backtrader clock,
driver, decision core, simulated broker) on a constructed market."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import load_inputs, run_backtest
from core.config import build_config
from core.dto import CONTRACT_MULTIPLIER, ExitReason, LedgerKind, LegRole
from data_factory.scenario import ScenarioMarket, flat_bars, path_bars

HOLD_TO_EXPIRY = {
    "exits.profit_target": False, "exits.loss_multiple": 10.0, "exits.dte_exit": 0, "exits.max_hold_days": 365,
    "strategy.max_positions": 1, "run.progress": False, "run.no_plot": True,
    "gates.use_regime_gate": False, "exits.breakout_exit": False,  # pure condor arithmetic
}


def _cfg(start: str, end: str, **extra):
    return build_config(None, {"backtest.start": start, "backtest.end": end, **HOLD_TO_EXPIRY, **extra})


def _entry_fees(trade) -> float:
    return round(sum(leg.qty for leg in trade.position.legs) * (0.65 + 0.03), 6)


def test_flat_market_condor_to_expiry_earns_credit_minus_fees():
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 6, 29), 250.0), vix=15.0)
    res = run_backtest(_cfg("2018-03-01", "2018-06-29"), market=market)
    trades = [t for t in res.driver.broker.closed if t.exit_reason is ExitReason.EXPIRY]
    assert len(trades) >= 2
    for t in trades:
        expected = t.position.credit * CONTRACT_MULTIPLIER * t.position.qty - _entry_fees(t)
        assert t.pnl == pytest.approx(expected, abs=1e-6)
        assert t.exit_time.date() == t.position.legs[0].contract.expiry


def test_gap_below_long_put_loses_put_width_minus_credit_plus_fees():
    gap_day = pd.Timestamp("2018-03-20")

    def price(idx: pd.DatetimeIndex) -> np.ndarray:
        day = idx.tz_localize(None).normalize()
        return np.where(day >= gap_day, 200.0, 250.0)

    market = ScenarioMarket(path_bars(dt.date(2018, 3, 1), dt.date(2018, 4, 13), price), vix=15.0)
    res = run_backtest(_cfg("2018-03-01", "2018-04-13"), market=market)
    first = res.driver.broker.closed[0]
    pos = first.position
    put_width = pos.leg(LegRole.SHORT_PUT).contract.strike - pos.leg(LegRole.LONG_PUT).contract.strike
    assert pos.leg(LegRole.LONG_PUT).contract.strike > 200.0  # the gap went below the long put
    assert first.exit_reason is ExitReason.EXPIRY
    expected_loss = (put_width - pos.credit) * CONTRACT_MULTIPLIER * pos.qty + _entry_fees(first)
    assert -first.pnl == pytest.approx(expected_loss, abs=1e-6)


def test_profit_target_fires_on_first_bar_whose_mark_crosses_it():
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 4, 30), 250.0), vix=15.0)
    cfg = _cfg("2018-03-01", "2018-04-30", **{"exits.profit_target": True, "exits.profit_pct": 0.5})
    inputs = load_inputs(cfg, market)
    res = run_backtest(cfg, inputs=inputs)
    trade = res.driver.broker.closed[0]
    assert trade.exit_reason is ExitReason.PROFIT_TARGET
    legs = trade.position.legs
    idx = pd.DatetimeIndex(inputs.bars.index)
    after = idx[idx > pd.Timestamp(trade.position.opened_at)]
    target = trade.position.credit * 0.5
    first_cross = None
    for ts in after:  # independent bar-by-bar re-marking of the open position
        m = inputs.chains.marks(ts, np.array([leg.contract.expiry for leg in legs], dtype="datetime64[D]"),
                                np.array([leg.contract.strike for leg in legs]),
                                np.array([leg.contract.right.value == "C" for leg in legs]))
        debit = sum(-leg.side.sign * mid for leg, mid in zip(legs, m.mid, strict=True))
        if debit <= target + 1e-12:
            first_cross = ts
            break
    assert first_cross is not None
    assert pd.Timestamp(trade.exit_time) == first_cross


def test_no_expiry_in_window_means_no_trades_and_a_reason_every_day():
    from data_factory.listing import listed_expiries

    days = pd.bdate_range("2018-03-01", "2018-03-09")
    window = next(k for k in range(50, 120)
                  if all(all((e - d.date()).days != k for e in listed_expiries(d.date())) for d in days))
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 9), 250.0), vix=15.0)
    cfg = _cfg("2018-03-01", "2018-03-09", **{"strategy.dte_min": window, "strategy.dte_max": window})
    res = run_backtest(cfg, market=market)
    assert res.driver.broker.closed == []
    evaluated = [line for line in res.driver.decisions if "T10:00:00" in line]
    assert len(evaluated) == 7  # seven sessions, one evaluation each
    assert all(f"no listed expiry with {window}-{window} DTE" in line for line in evaluated)


def test_short_call_assigned_the_day_before_ex_dividend():
    jump = pd.Timestamp("2018-03-05")

    def price(idx: pd.DatetimeIndex) -> np.ndarray:
        day = idx.tz_localize(None).normalize()
        return np.where(day >= jump, 290.0, 250.0)

    market = ScenarioMarket(path_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 23), price), vix=15.0)
    res = run_backtest(_cfg("2018-03-01", "2018-03-23"), market=market)
    trade = res.driver.broker.closed[0]
    assert trade.exit_reason is ExitReason.ASSIGNMENT
    assert trade.exit_time.date() == dt.date(2018, 3, 15)  # ex-dividend date is Friday 2018-03-16
    short_call = trade.position.leg(LegRole.SHORT_CALL)
    i = [leg.role for leg in trade.position.legs].index(LegRole.SHORT_CALL)
    assert trade.exit_prices[i] == pytest.approx(290.0 - short_call.contract.strike)
    share_moves = [e for e in res.driver.broker.ledger if e.kind is LedgerKind.SHARES]
    assert len(share_moves) == 2  # delivered at the close, flattened at the next open
    assert share_moves[1].ts.date() == dt.date(2018, 3, 16)
    assert res.driver.broker.shares == 0
