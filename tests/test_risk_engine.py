"""Risk layer through the engine: caps block exactly the breaching trade, the daily drawdown
stop fires on the right bar and lifts the next day, Greeks are recorded per bar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from data_factory.scenario import ScenarioMarket, flat_bars, path_bars

BASE = {"backtest.start": "2018-03-01", "backtest.end": "2018-03-09", "run.progress": False, "run.no_plot": True,
        "strategy.max_positions": 10, "backtest.cash": 100_000.0}


def test_portfolio_vega_cap_blocks_exactly_the_trade_that_would_breach():
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 9), 250.0), vix=15.0)
    free = run_backtest(build_config(None, BASE), market=market)
    opened = [t.position for t in free.driver.broker.closed]
    assert len(opened) >= 3
    # vega of the book just after the second entry = cap: the third entry must be the first blocked one
    idx = pd.DatetimeIndex(free.inputs.bars.index)
    second = pd.Timestamp(opened[1].opened_at)
    book_vega = abs(free.driver.rec.greeks[idx.get_loc(second), 2])
    capped = run_backtest(build_config(None, {**BASE, "risk.max_portfolio_vega": book_vega + 0.5}), market=market)
    kept = [t.position.opened_at for t in capped.driver.broker.closed]
    assert kept[:2] == [opened[0].opened_at, opened[1].opened_at]
    blocked = [x for x in capped.driver.decisions if "portfolio vega" in x and "would exceed cap" in x]
    assert blocked and blocked[0].startswith(pd.Timestamp(opened[2].opened_at).isoformat())


def test_drawdown_stop_fires_on_the_right_bar_and_lifts_next_day():
    crash_at = pd.Timestamp("2018-03-06 12:00", tz="America/New_York")

    def price(idx: pd.DatetimeIndex) -> np.ndarray:
        return np.where(idx >= crash_at, 238.0, 250.0)

    market = ScenarioMarket(path_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 9), price), vix=15.0)
    cfg = build_config(None, {**BASE, "backtest.entry_every_bar": True, "strategy.max_positions": 1,
                              "risk.max_daily_drawdown": 0.002, "exits.loss_multiple": 10.0,
                              "backtest.cash": 25_000.0})
    res = run_backtest(cfg, market=market)
    eq = pd.Series(res.driver.rec.equity, index=pd.DatetimeIndex(res.inputs.bars.index))
    day = eq.index.tz_localize(None).normalize() == pd.Timestamp("2018-03-06")
    start_equity = eq[eq.index < eq.index[day][0]].iloc[-1]
    trip = eq[day & ((start_equity - eq) / start_equity >= 0.002 - 1e-9)].index[0]
    assert trip == crash_at
    blocked = [x for x in res.driver.decisions if "daily drawdown stop" in x]
    assert blocked, "entries after the trip must say why they were blocked"
    assert all(x[:10] == "2018-03-06" for x in blocked)
    assert min(x[:25] for x in blocked) > trip.isoformat()[:19]


def test_greeks_recorded_every_bar_with_short_condor_signs():
    market = ScenarioMarket(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 9), 250.0), vix=15.0)
    res = run_backtest(build_config(None, BASE), market=market)
    g = res.driver.rec.greeks
    held = res.driver.rec.open_positions > 0
    assert held.any()
    assert (g[held, 1] < 0).all() and (g[held, 2] < 0).all() and (g[held, 3] > 0).all()
    assert (g[~held] == 0).all()


def test_delta_hedge_keeps_net_delta_per_contract_inside_the_threshold():
    def price(idx: pd.DatetimeIndex) -> np.ndarray:  # a steady rally pushes the short call's delta up
        return 250.0 * np.exp(0.004 * np.arange(len(idx)) / 78)

    market = ScenarioMarket(path_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 23), price), vix=15.0)
    cfg = build_config(None, {**BASE, "backtest.end": "2018-03-23", "hedge.enable_hedge": True,
                              "hedge.hedge_threshold": 0.05, "strategy.max_positions": 2})
    res = run_backtest(cfg, market=market)
    hedges = [x for x in res.driver.decisions if " HEDGE " in x]
    assert hedges
    idx = pd.DatetimeIndex(res.inputs.bars.index)
    for line in hedges:
        i = idx.get_loc(pd.Timestamp(line[:25]))
        contracts = max(int(res.driver.rec.open_positions[i]), 1)  # every position here is one contract
        # after the hedge trade the book delta (options + shares) is within one share per contract of zero
        assert abs(res.driver.rec.greeks[i, 0]) <= 1.0 * contracts + 1e-9, line
    broker = res.driver.broker
    assert broker.shares == 0  # unwound by the end
    assert broker.cash == pytest.approx(broker.start_cash + sum(e.amount for e in broker.ledger))
