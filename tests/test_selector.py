"""The regime selector through the full engine: every branch of the SPEC §5 table reached on a
constructed market whose regime is known by construction (VIX level, trend), and every
decision records the regime and the structure it chose."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import Action, LegRole, ReasonCode, Structure
from data_factory.calendar import sessions
from data_factory.scenario import ScenarioMarket, path_bars

BARS_FROM, START, END = dt.date(2018, 1, 2), "2018-04-09", "2018-05-04"
BASE = {"backtest.start": START, "backtest.end": END, "run.progress": False, "run.no_plot": True,
        "strategy.use_selector": True, "strategy.max_positions": 1, "backtest.cash": 100_000.0,
        "filters.vix_max": 50.0, "exits.breakout_exit": False}


def _vix(level: float, spike: float | None = None) -> pd.DataFrame:
    days = sessions(BARS_FROM, dt.date.fromisoformat(END))
    v = np.full(len(days), level)
    if spike is not None:
        v[3] = spike  # one early print gives IV rank a range (IV rank 0 afterwards)
    return pd.DataFrame({"vix": v, "is_proxy": False}, index=pd.DatetimeIndex(days, name="date"))


def _trend(daily: float):
    def price(idx: pd.DatetimeIndex) -> np.ndarray:
        day = idx.tz_localize(None).normalize()
        n = np.searchsorted(pd.DatetimeIndex(sessions(BARS_FROM, dt.date.fromisoformat(END))), day)
        return 250.0 * (1.0 + daily) ** n

    return price


def _run(vix: pd.DataFrame, daily: float = 0.0, **extra):
    market = ScenarioMarket(path_bars(BARS_FROM, dt.date.fromisoformat(END), _trend(daily)), vix=vix)
    return run_backtest(build_config(None, {**BASE, **extra}), market=market)


def _entries(res):
    return [r for r in res.driver.recorder.records if r.action is Action.ENTER]


@pytest.mark.parametrize(("name", "vix", "daily", "regime", "kind"), [
    ("low vol", _vix(11.0, spike=14.0), 0.0, "LOW_VOL_RANGE", Structure.CALL_CALENDAR),
    ("high vol", _vix(22.0), 0.0, "HIGH_VOL_RANGE", Structure.WIDE_IRON_CONDOR),
    ("bull", _vix(15.0), 0.003, "BULL_TREND", Structure.PUT_BROKEN_WING_BUTTERFLY),
    ("bear", _vix(25.0), -0.003, "BEAR_TREND", Structure.CALL_BROKEN_WING_BUTTERFLY),
])
def test_each_regime_opens_its_structure(name, vix, daily, regime, kind):
    res = _run(vix, daily)
    trades = res.driver.broker.closed
    assert trades, name
    assert {t.position.structure for t in trades} == {kind}
    for rec in _entries(res):
        assert (rec.scores["regime"], rec.scores["structure"]) == (regime, kind.value)
    for t in trades:
        assert t.entry_extra["scores"]["regime"] == regime  # travels with the trade (trades.csv)
    # every entry-time decision names the regime, entered or not
    evaluated = [r for r in res.driver.recorder.records if r.ts.hour == 10 and r.ts.minute == 0
                 and r.action in (Action.ENTER, Action.SKIP) and ReasonCode.MAX_POSITIONS not in r.codes]
    assert evaluated and all(r.scores.get("regime") == regime for r in evaluated)


def test_crash_mode_stands_aside_by_default_and_buys_puts_when_configured():
    crash = _vix(40.0)
    aside = _run(crash)
    assert aside.driver.broker.closed == []
    skips = [r for r in aside.driver.recorder.records if r.action is Action.SKIP and r.ts.hour == 10]
    assert skips and all(r.codes == (ReasonCode.SELECTOR_STAND_ASIDE,) for r in skips)
    hedged = _run(crash, **{"strategy.crash_mode": "long_put"})
    trades = hedged.driver.broker.closed
    assert trades and {t.position.structure for t in trades} == {Structure.LONG_PUT}
    for t in trades:
        assert [leg.role for leg in t.position.legs] == [LegRole.LONG_PUT]
        assert t.exit_reason.value != "crash_mode"  # the hedge is held through the crash regime
