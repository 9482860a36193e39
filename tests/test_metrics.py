"""Performance metrics pinned to quantstats (same daily returns) and to hand-worked trade numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from analytics.metrics import (
    METRIC_KEYS,
    compute_metrics,
    daily_closes,
    daily_returns,
    exposure_from_trades,
    fitness,
    max_drawdown,
    trade_stats,
)

NY = "America/New_York"


def _daily_equity(seed: int = 3, n: int = 300, start: float = 25_000.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0004, 0.01, n)
    idx = pd.bdate_range("2018-01-02", periods=n)
    return pd.Series(start * np.cumprod(1 + rets), index=idx)


def _no_trades() -> pd.DataFrame:
    return pd.DataFrame({"pnl": [], "entry_time": [], "exit_time": []})


def test_daily_closes_takes_last_mark_of_each_ny_session() -> None:
    idx = pd.DatetimeIndex(
        ["2020-03-02 09:35", "2020-03-02 16:00", "2020-03-03 09:35", "2020-03-03 15:55"], tz=NY
    )
    eq = pd.Series([100.0, 101.0, 99.0, 98.5], index=idx)
    closes = daily_closes(eq)
    assert closes.to_list() == [101.0, 98.5]
    assert list(closes.index) == [pd.Timestamp("2020-03-02"), pd.Timestamp("2020-03-03")]
    rets = daily_returns(eq, start_cash=100.0)
    np.testing.assert_allclose(rets.to_numpy(), [0.01, 98.5 / 101.0 - 1.0], rtol=0, atol=1e-15)


def test_ratio_metrics_match_quantstats_on_same_daily_returns() -> None:
    eq = _daily_equity()
    m = compute_metrics(eq, _no_trades(), start_cash=25_000.0)
    rets = daily_returns(eq, 25_000.0)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(rets), rel=1e-12)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(rets), rel=1e-12)
    assert m["max_drawdown_pct"] == pytest.approx(qs.stats.max_drawdown(rets), rel=1e-12)
    # quantstats' CAGR uses years = number of returns / 252 (trading-period convention)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(rets), rel=1e-12)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(rets), rel=1e-12)
    assert m["days"] == 300


def test_first_day_loss_counts_against_start_cash() -> None:
    idx = pd.bdate_range("2021-01-04", periods=3)
    eq = pd.Series([24_000.0, 24_500.0, 26_000.0], index=idx)
    m = compute_metrics(eq, _no_trades(), start_cash=25_000.0)
    assert m["max_drawdown"] == -1_000.0
    assert m["max_drawdown_pct"] == pytest.approx(-0.04, abs=1e-15)
    rets = daily_returns(eq, 25_000.0)
    assert m["max_drawdown_pct"] == pytest.approx(qs.stats.max_drawdown(rets), rel=1e-12)
    # hand-worked: 26000/25000 = 1.04 over 3 sessions -> 1.04 ** 84 - 1
    assert m["cagr"] == pytest.approx(1.04**84 - 1.0, rel=1e-12)
    assert m["net_profit"] == 1_000.0
    assert m["fitness"] == pytest.approx(1.0)


def test_intraday_trough_counts_in_drawdown_but_not_in_daily_returns() -> None:
    idx = pd.DatetimeIndex(["2020-03-02 10:00", "2020-03-02 16:00", "2020-03-03 16:00"], tz=NY)
    eq = pd.Series([90.0, 105.0, 103.0], index=idx)
    dd_usd, dd_pct = max_drawdown(eq, start_cash=100.0)
    assert dd_usd == -10.0
    assert dd_pct == pytest.approx(-0.10)


def test_sortino_downside_deviation_hand_worked() -> None:
    idx = pd.bdate_range("2022-01-03", periods=4)
    # returns 0.02, -0.01, 0.03, -0.02 from start 100
    closes = 100 * np.cumprod([1.02, 0.99, 1.03, 0.98])
    m = compute_metrics(pd.Series(closes, index=idx), _no_trades(), start_cash=100.0)
    downside = math.sqrt((0.01**2 + 0.02**2) / 4)
    assert m["sortino"] == pytest.approx(0.005 / downside * math.sqrt(252), rel=1e-10)
    sd = np.std([0.02, -0.01, 0.03, -0.02], ddof=1)
    assert m["sharpe"] == pytest.approx(0.005 / sd * math.sqrt(252), rel=1e-10)


def test_trade_stats_hand_worked() -> None:
    stats = trade_stats(np.array([100.0, -50.0, 200.0, -150.0, 0.0]))
    assert stats == {
        "trades": 5,
        "win_rate": 0.4,
        "profit_factor": 1.5,  # 300 / 200
        "expectancy": 20.0,  # 100 / 5
        "avg_win": 150.0,
        "avg_loss": -100.0,
        "win_loss_ratio": 1.5,
    }


def test_trade_stats_without_losses_is_json_safe() -> None:
    stats = trade_stats(np.array([10.0, 30.0]))
    assert stats["profit_factor"] is None
    assert stats["avg_loss"] is None
    assert stats["win_loss_ratio"] is None
    assert stats["win_rate"] == 1.0
    empty = trade_stats(np.zeros(0))
    assert empty["trades"] == 0
    assert empty["expectancy"] is None
    assert empty["win_rate"] is None


def test_exposure_from_trades_counts_open_positions_per_bar() -> None:
    idx = pd.date_range("2020-01-01 10:00", periods=6, freq="h")
    trades = pd.DataFrame(
        {
            "pnl": [1.0, 2.0],
            "entry_time": [idx[1], idx[2]],
            "exit_time": [idx[3], idx[5]],
        }
    )
    np.testing.assert_array_equal(exposure_from_trades(idx, trades), [0, 1, 2, 1, 1, 0])
    eq = pd.Series(100.0, index=idx)
    m = compute_metrics(eq, trades, start_cash=100.0)
    assert m["exposure"] == pytest.approx(4 / 6)
    given = compute_metrics(eq, trades, exposure=np.array([True, False, False, False, False, False]), start_cash=100.0)
    assert given["exposure"] == pytest.approx(1 / 6)


def test_fitness_definition_including_zero_drawdown() -> None:
    assert fitness(500.0, -250.0, 25_000.0) == 2.0
    assert fitness(500.0, 0.0, 25_000.0) == 2.0  # floor: 1% of 25k = 250
    assert fitness(0.0, 0.0, 25_000.0) == 0.0
    assert fitness(-300.0, -600.0, 25_000.0) == -0.5


def test_compute_metrics_is_json_safe_with_stable_keys() -> None:
    idx = pd.bdate_range("2022-01-03", periods=3)
    flat = pd.Series([100.0, 100.0, 100.0], index=idx)
    m = compute_metrics(flat, _no_trades(), start_cash=100.0)
    assert tuple(m) == METRIC_KEYS
    assert m["sharpe"] is None
    assert m["sortino"] is None
    assert m["fitness"] == 0.0
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text)["net_profit"] == 0.0
