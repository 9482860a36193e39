"""VaR / CVaR: hand-computed type-7 quantiles, seeded bootstrap, final-equity percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from risk.var import (
    bootstrap_sums,
    empirical_quantile,
    historical_cvar,
    historical_var,
    monte_carlo_final_equity,
    monte_carlo_var,
    var_table,
)


def test_historical_var_cvar_small_series_hand_computed() -> None:
    pnl = [5.0, -10.0, 10.0, 0.0, -5.0]  # unsorted on purpose
    # 95%: h = (5 - 1) * 0.05 = 0.2 -> Q = -10 + 0.2 * (-5 - -10) = -9
    assert historical_var(pnl, 0.95) == pytest.approx(9.0, abs=1e-12)
    assert historical_cvar(pnl, 0.95) == pytest.approx(10.0, abs=1e-12)
    # 99%: h = 0.04 -> Q = -10 + 0.04 * 5 = -9.8
    assert historical_var(pnl, 0.99) == pytest.approx(9.8, abs=1e-12)
    # 90%: h = 0.4 -> Q = -8
    assert empirical_quantile(pnl, 0.10) == pytest.approx(-8.0, abs=1e-12)


def test_historical_var_twenty_days_hand_computed() -> None:
    pnl = np.arange(-10.0, 10.0)  # -10 .. 9, n = 20
    table = var_table(pnl)
    # 95%: h = 19 * 0.05 = 0.95 -> Q = -10 + 0.95 = -9.05; tail {-10}
    # 99%: h = 0.19 -> Q = -9.81
    assert table == {
        "var_95": pytest.approx(9.05, abs=1e-12), "cvar_95": pytest.approx(10.0),
        "var_99": pytest.approx(9.81, abs=1e-12), "cvar_99": pytest.approx(10.0),
    }
    assert list(table) == ["var_95", "cvar_95", "var_99", "cvar_99"]
    # 80%: h = 3.8 -> Q = -7 + 0.8 = -6.2; tail {-10, -9, -8, -7} -> CVaR 8.5
    assert historical_var(pnl, 0.80) == pytest.approx(6.2, abs=1e-12)
    assert historical_cvar(pnl, 0.80) == pytest.approx(8.5, abs=1e-12)


def test_var_ignores_nan_and_rejects_bad_input() -> None:
    assert historical_var([np.nan, -1.0, 1.0], 0.5) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least one finite"):
        historical_var([np.nan])
    with pytest.raises(ValueError, match="confidence level"):
        historical_var([1.0, 2.0], 1.0)


def test_bootstrap_is_seeded_and_one_day_matches_history() -> None:
    rng = np.random.default_rng(1)
    pnl = rng.normal(20.0, 100.0, 2_000)
    a = monte_carlo_var(pnl, n_paths=20_000, seed=9)
    b = monte_carlo_var(pnl, n_paths=20_000, seed=np.random.default_rng(9))
    assert a == b
    hist = var_table(pnl)
    assert a["var_95"] == pytest.approx(hist["var_95"], rel=0.05)
    assert a["cvar_99"] == pytest.approx(hist["cvar_99"], rel=0.08)


def test_bootstrap_horizon_scales_like_sum_of_iid_days() -> None:
    rng = np.random.default_rng(2)
    pnl = rng.normal(0.0, 100.0, 5_000)
    ten = monte_carlo_var(pnl, n_paths=20_000, horizon_days=10, seed=3)
    # normal closed form: VaR95 = 1.6449 * 100 * sqrt(10) = 520.2
    assert ten["var_95"] == pytest.approx(1.6448536 * 100 * np.sqrt(10), rel=0.05)
    assert bootstrap_sums(pnl, 7, 3, seed=1).shape == (7,)


def test_monte_carlo_final_equity_percentiles() -> None:
    const = monte_carlo_final_equity([10.0, 10.0, 10.0], 25_000.0, n_paths=100, seed=1)
    assert const["p5"] == const["p50"] == const["p95"] == 25_030.0
    assert const["prob_loss"] == 0.0
    coin = monte_carlo_final_equity([1.0, -1.0], 100.0, n_paths=40_000, seed=4)
    # two trades of +-1: final 98 (1/4), 100 (1/2), 102 (1/4)
    assert coin["prob_loss"] == pytest.approx(0.25, abs=0.01)
    assert coin["p50"] == 100.0
    assert coin["p1"] == 98.0
    assert coin["p99"] == 102.0
    assert coin["mean"] == pytest.approx(100.0, abs=0.02)
