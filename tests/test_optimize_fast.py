"""The optimizer's fast evaluation equals the Backtrader-driven reference, to the cent."""

from __future__ import annotations

import collections

import pytest

from core.backtest.driver import BacktestDriver
from core.backtest.run import load_inputs, run_backtest
from core.config import AppConfig
from core.optimize.fast import (
    CachedChains,
    RunOutcome,
    SharedData,
    fast_path_problem,
    feature_key,
    new_driver,
    reference_outcome,
    run_fast,
    same_outcome,
    score_outcome,
    trades_table,
)

BASE = {"backtest.start": "2018-01-02", "backtest.end": "2018-03-30", "run.progress": False}

# each case exercises one rule of strategies/exits.py, the drawdown stop or the risk caps
CASES = {
    "default": {},
    "stop_loss": {"exits.loss_multiple": 0.3, "exits.profit_target": False},
    "max_hold": {"exits.max_hold_days": 2, "exits.breakout_exit": False},
    "dte_exit": {"exits.dte_exit": 28, "strategy.dte_min": 28, "strategy.dte_max": 35},
    "drawdown_flatten": {"risk.max_daily_drawdown": 0.003, "risk.flatten_on_drawdown": True,
                         "strategy.max_positions": 6},
    "risk_caps": {"risk.max_portfolio_delta": 20.0, "risk.max_trade_vega": 20.0, "strategy.max_positions": 8,
                  "risk.max_account_risk_per_trade": 0.05},
    "other_features": {"indicators.psar_acceleration": 0.025, "filters.vix_threshold_low": 15.0,
                       "indicators.adx_threshold_low": 20.0, "indicators.use_adx_filter": True},
    "fuzzy_sizing": {"fuzzy.use_fuzzy": True, "fuzzy.neural_weight": 0.3, "indicators.rsi_neutral_min": 30.0},
    "broken_wing_butterfly": {"strategy.structure": "put_broken_wing_butterfly"},
    "calendar": {"strategy.structure": "put_calendar"},
    "long_put": {"strategy.structure": "long_put"},
    "roll_on_dte": {"exits.on_dte": "roll", "exits.dte_exit": 28},
    "adjust_on_breakout": {"exits.on_breakout": "adjust"},
    "regime_selector": {"strategy.use_selector": True, "strategy.crash_mode": "long_put"},
    "expiry": {"exits.profit_target": False, "exits.loss_multiple": 10.0, "exits.dte_exit": 0,
               "exits.max_hold_days": 365, "exits.breakout_exit": False, "strategy.dte_min": 7,
               "strategy.dte_max": 12},
}


@pytest.fixture(scope="module")
def base() -> AppConfig:
    return AppConfig().with_overrides(BASE)


@pytest.fixture(scope="module")
def shared(base: AppConfig) -> SharedData:
    return SharedData(base)


@pytest.fixture(scope="module")
def outcomes(base: AppConfig, shared: SharedData) -> dict[str, tuple[RunOutcome, RunOutcome]]:
    out = {}
    for name, ov in CASES.items():
        cfg = base.with_overrides(ov)
        out[name] = (run_fast(cfg, shared), reference_outcome(cfg, shared))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_fast_equals_reference(outcomes: dict[str, tuple[RunOutcome, RunOutcome]], name: str) -> None:
    fast, ref = outcomes[name]
    assert fast.path == "fast" and ref.path == "reference"
    assert same_outcome(fast, ref) == ""
    assert len(trades_table(fast)) > 0
    # the record of every traded bar, not only the visited ones, equals the reference's to the bit
    first = fast.first_bar
    for arr in ("equity", "cash", "positions_value", "open_positions", "greeks"):
        a, b = getattr(fast.driver.rec, arr)[first:], getattr(ref.driver.rec, arr)[first:]
        assert (a == b).all(), arr
    assert fast.bars_visited < 0.25 * len(fast.driver.index)  # it really skips bars


def test_cases_exercise_every_exit_and_the_risk_layer(outcomes: dict[str, tuple[RunOutcome, RunOutcome]]) -> None:
    reasons = collections.Counter(t.exit_reason.value for f, _ in outcomes.values() for t in f.driver.broker.closed)
    for r in ("profit_target", "stop_loss", "max_hold", "dte_exit", "crash_mode", "breakout", "drawdown_flatten",
              "expiry", "end_of_data"):
        assert reasons[r] > 0, r
    codes = collections.Counter(c.value for f, _ in outcomes.values() for rec in f.driver.recorder.records
                                for c in rec.codes)
    assert codes["risk_block"] > 0 and codes["drawdown_stop"] > 0 and codes["max_positions"] > 0


def test_fast_equals_a_fresh_reference_run(base: AppConfig, shared: SharedData) -> None:
    """Against ``run_backtest`` on freshly loaded inputs and the uncached chain source."""
    cfg = base.with_overrides({"exits.profit_pct": 0.4, "exits.max_hold_days": 10})
    fresh = run_backtest(cfg, progress=False)
    ref = RunOutcome(fresh.driver, fresh.inputs.first_bar, "reference")
    fast = run_fast(cfg, shared)
    assert same_outcome(fast, ref) == ""
    sf, sr = score_outcome(fast, cfg, 1), score_outcome(ref, cfg, 1)
    for f in ("fitness", "net", "max_dd", "sharpe", "trades", "daily", "daily_pnl"):
        assert getattr(sf, f) == getattr(sr, f), f


def test_repeat_evaluations_are_identical(base: AppConfig, shared: SharedData) -> None:
    cfg = base.with_overrides({"exits.loss_multiple": 2.0})
    a, b = run_fast(cfg, shared), run_fast(cfg, shared)
    assert trades_table(a) == trades_table(b)
    assert (a.driver.rec.equity[a.first_bar:] == b.driver.rec.equity[b.first_bar:]).all()


def test_event_closes_fall_back_to_the_reference(base: AppConfig, shared: SharedData) -> None:
    cfg = base.with_overrides({"gates.event_close_sessions": 1})
    out = run_fast(cfg, shared)
    assert out.path == "reference" and "event" in out.why


def test_hedging_falls_back_to_the_reference(base: AppConfig, shared: SharedData) -> None:
    cfg = base.with_overrides({"hedge.enable_hedge": True})
    assert "hedge" in fast_path_problem(cfg, shared)
    out = run_fast(cfg, shared)
    assert out.path == "reference" and "hedge" in out.why
    assert score_outcome(out, cfg, 0).path == "reference"


def test_new_driver_has_the_attributes_of_a_constructed_driver(base: AppConfig, shared: SharedData) -> None:
    features = shared.features(base)
    real = BacktestDriver(base, shared.inputs.bars, features, shared.inputs.chains, shared.inputs.first_bar,
                          shared.ex_dividend(base))
    ours = new_driver(base, shared, features)
    assert set(vars(real)) == set(vars(ours))
    assert real.builder.next_ex == ours.builder.next_ex


def test_cached_chains_return_what_the_source_returns(base: AppConfig, shared: SharedData) -> None:
    raw = load_inputs(base).chains
    cached = CachedChains(raw)
    ts = shared.index[shared.inputs.first_bar + 6]
    assert cached.expiries(ts) == raw.expiries(ts)
    e = raw.expiries(ts)[3]
    a, b = cached.expiry_slice(ts, e), raw.expiry_slice(ts, e)
    assert (a.put_bid == b.put_bid).all() and cached.expiry_slice(ts, e) is a
    import numpy as np

    args = (shared.index[100:300], np.array([e, e], dtype="datetime64[D]"), np.array([250.0, 280.0]),
            np.array([False, True]))
    m1, m2 = cached.marks_path(*args), cached.marks_path(*args)
    assert m1 is m2 and cached.hits == 1
    assert (m1.mid == raw.marks_path(*args).mid).all()
    with pytest.raises(ValueError, match="read-only"):
        m1.mid[0, 0] = 1.0  # shared paths are read-only


def test_feature_key_ignores_decision_only_fields(base: AppConfig) -> None:
    decision_only = {"exits.profit_pct": 0.8, "risk.max_daily_drawdown": 0.05}
    assert feature_key(base) == feature_key(base.with_overrides(decision_only))
    assert feature_key(base) != feature_key(base.with_overrides({"indicators.psar_acceleration": 0.025}))
    assert feature_key(base) != feature_key(base.with_overrides({"filters.vix_threshold_low": 15.0}))


def test_min_trades_guard(base: AppConfig, shared: SharedData) -> None:
    out = run_fast(base, shared)
    n = len(out.driver.broker.closed)
    ok, short = score_outcome(out, base, n), score_outcome(out, base, n + 1)
    assert ok.guard == "" and ok.fitness == ok.raw_fitness
    assert short.guard and short.fitness == -1.0e9 and short.raw_fitness == ok.raw_fitness


def test_zero_drawdown_and_no_trades(base: AppConfig, shared: SharedData) -> None:
    """No entry at all: net 0 and drawdown 0; fitness = net / (1% of the cash) = 0 (documented),
    and the trade guard scores it worst unless --min-trades is 0."""
    cfg = base.with_overrides({"filters.ivr_min": 100.0, "filters.vix_max": 1.0})
    out = run_fast(cfg, shared)
    s = score_outcome(out, cfg, 0)
    assert s.trades == 0 and s.net == 0.0 and s.max_dd == 0.0 and s.raw_fitness == 0.0 and s.fitness == 0.0
    assert score_outcome(out, cfg, 1).fitness == -1.0e9


def test_ties_are_broken_by_the_parameter_text() -> None:
    from core.optimize.search import rank_key

    rows = [{"key": k, "score": {"fitness": f}} for k, f in (('{"b":1}', 1.0), ('{"a":1}', 1.0), ('{"c":1}', 2.0))]
    assert [r["key"] for r in sorted(rows, key=rank_key)] == ['{"c":1}', '{"a":1}', '{"b":1}']
    invalid = {"key": '{"0":1}', "invalid": "bad"}
    assert sorted([*rows, invalid], key=rank_key)[-1] is invalid
