"""Fuzzy memberships at and between their breakpoints, weights, F_t, neural blend, sizing, entry score."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import FuzzyConfig, StrategyConfig
from core.dto import ConfigError, ForecastState
from intelligence import fuzzy
from strategies import scoring


def mu(factor: str, **raw: list[float]) -> np.ndarray:
    return fuzzy.memberships({k: np.asarray(v, dtype=float) for k, v in raw.items()})[factor]


@pytest.mark.parametrize(
    ("factor", "key", "x", "expected"),
    [
        ("mtf", "mtf_consensus", [0.0, 0.25, 0.4, 0.5, 0.6, 0.9, 1.0], [0.0, 0.5, 0.8, 1.0, 0.8, 0.2, 0.0]),
        ("iv_rank", "iv_rank", [0.0, 15.0, 30.0, 60.0, 80.0, 100.0], [0.0, 0.25, 0.5, 1.0, 1.0, 1.0]),
        ("vix", "vix", [9.0, 12.0, 15.0, 21.0, 30.0, 45.0], [1.0, 1.0, 5 / 6, 0.5, 0.0, 0.0]),
        ("rsi", "rsi", [0.0, 20.0, 40.0, 50.0, 60.0, 70.0, 90.0, 100.0], [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.25, 0.0]),
        ("adx", "adx", [10.0, 25.0, 28.0, 32.5, 40.0, 55.0], [1.0, 1.0, 0.8, 0.5, 0.0, 0.0]),
        ("stochastic", "stoch_k", [0.0, 15.0, 30.0, 50.0, 70.0, 85.0, 100.0], [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]),
        ("psar", "psar_p", [-1.0, -0.5, 0.0, 0.25, 1.0], [0.0, 0.5, 1.0, 0.75, 0.0]),
        ("volume", "volume_ratio", [0.0, 0.4, 0.8, 1.0, 3.0], [0.0, 0.5, 1.0, 1.0, 1.0]),
        ("sma_distance", "sma_distance", [-0.03, -0.02, -0.01, 0.0, 0.005, 0.02, 0.05],
         [0.0, 0.0, 0.5, 1.0, 0.75, 0.0, 0.0]),
    ],
)
def test_single_input_memberships(factor, key, x, expected):
    np.testing.assert_allclose(mu(factor, **{key: x}), expected, atol=1e-12)


def test_bollinger_membership_literal():
    # 0.7·(1 − |pos − 0.5|·2) + 0.3·max(0, 1 − width/0.04)
    got = mu("bollinger", bb_position=[0.5, 0.5, 0.25, 1.0, 1.3, 0.5], bb_width=[0.0, 0.02, 0.01, 0.04, 0.0, 0.08])
    np.testing.assert_allclose(got, [1.0, 0.85, 0.35 + 0.225, 0.0, 0.3, 0.7], atol=1e-12)


def test_nan_input_gives_nan_membership_not_one():
    got = fuzzy.memberships({"rsi": np.array([np.nan, 50.0])})
    assert np.isnan(got["rsi"][0])
    assert got["rsi"][1] == 1.0
    assert np.isnan(got["adx"]).all()  # absent input → unavailable factor


def test_params_move_breakpoints():
    p = fuzzy.FuzzyParams(rsi_neutral_min=30.0, rsi_neutral_max=70.0, sma_max_distance=0.04)
    got = fuzzy.memberships({"rsi": np.array([15.0, 35.0, 85.0]), "sma_distance": np.array([0.01])}, p)
    np.testing.assert_allclose(got["rsi"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(got["sma_distance"], [0.75])
    with pytest.raises(ConfigError):
        fuzzy.FuzzyParams(rsi_neutral_min=70.0, rsi_neutral_max=60.0)


def test_default_weights_sum_to_one_and_validate():
    assert sum(fuzzy.DEFAULT_WEIGHTS.values()) == pytest.approx(1.0, abs=1e-12)
    assert set(fuzzy.DEFAULT_WEIGHTS) == set(fuzzy.FACTORS)
    assert len(fuzzy.FACTORS) == 10
    assert fuzzy.validate_weights(fuzzy.DEFAULT_WEIGHTS) == fuzzy.DEFAULT_WEIGHTS
    assert fuzzy.validate_weights({"mtf": 0.5, "rsi": 0.5})["adx"] == 0.0


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        ({**fuzzy.DEFAULT_WEIGHTS, "mtf": 0.17}, "sum to 0.990000"),
        ({**fuzzy.DEFAULT_WEIGHTS, "mtf": 0.18 + 2e-6}, "must sum to 1"),
        ({"mtf": 1.0, "momentum": 0.0}, "unknown fuzzy weight(s) momentum"),
        ({"mtf": 1.2, "rsi": -0.2}, "rsi=-0.2"),
    ],
)
def test_bad_weights_raise_one_line(weights, fragment):
    with pytest.raises(ConfigError) as err:
        fuzzy.validate_weights(weights)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_weights_within_tolerance_pass_and_normalize():
    fuzzy.validate_weights({**fuzzy.DEFAULT_WEIGHTS, "mtf": 0.18 + 5e-7})
    w = fuzzy.normalize_weights({"mtf": 0.25, "iv_rank": 0.2, "vix": 0.15, "rsi": 0.15, "adx": 0.25})
    assert w["mtf"] == pytest.approx(0.25)
    assert w["volume"] == 0.0


def test_fuzzy_confidence_weighted_sum_and_renormalisation():
    ones = {name: np.ones(2) for name in fuzzy.FACTORS}
    np.testing.assert_allclose(fuzzy.fuzzy_confidence(ones), [1.0, 1.0])
    m = {name: np.array([0.5]) for name in fuzzy.FACTORS}
    m["mtf"], m["iv_rank"] = np.array([1.0]), np.array([0.0])
    # 0.18·1 + 0.14·0 + 0.68·0.5 = 0.52
    np.testing.assert_allclose(fuzzy.fuzzy_confidence(m), [0.52])
    m["mtf"] = np.array([np.nan])  # MTF unavailable: (0.14·0 + 0.68·0.5)/0.82
    np.testing.assert_allclose(fuzzy.fuzzy_confidence(m), [0.34 / 0.82])
    assert np.isnan(fuzzy.fuzzy_confidence({n: np.array([np.nan]) for n in fuzzy.FACTORS})[0])


def test_evaluate_keeps_raw_membership_weight_for_logging():
    res = fuzzy.evaluate({"rsi": np.array([20.0]), "bb_position": np.array([0.5]), "bb_width": np.array([0.02])})
    row = res.row(0)
    assert row["rsi"] == {"rsi": 20.0, "membership": 0.5, "weight": 0.10}
    assert row["bollinger"]["membership"] == pytest.approx(0.85)
    assert row["bollinger"]["bb_width"] == 0.02
    assert row["F"]["confidence"] == pytest.approx((0.10 * 0.5 + 0.09 * 0.85) / 0.19)


def test_spec_sizing_example():
    g, q = fuzzy.fuzzy_size(0.65, 0.30, 5)
    assert float(g) == pytest.approx(0.455)
    assert int(q) == 2
    g, q = fuzzy.fuzzy_size(np.array([0.6, 1.0, 0.2, np.nan]), np.array([0.5, 0.0, 0.9, 0.1]), 10)
    np.testing.assert_array_equal(q, [3, 10, 0, 0])  # 0.6·0.5·10 = 2.9999999999999996 in binary → 3


def test_neural_blend_leaves_f_unchanged_without_forecaster():
    f = np.array([0.2, 0.65, 0.9])
    w_n = FuzzyConfig().neural_weight  # SPEC §4: 0.10
    np.testing.assert_array_equal(fuzzy.blend_neural(f, None, w_n), f)
    np.testing.assert_allclose(fuzzy.blend_neural(f, ForecastState.neutral(), w_n), f)  # confidence 0
    fs = ForecastState(prob_bull=0.1, prob_bear=0.1, prob_neutral=0.8, confidence=1.0)
    # C = 0.1·0.8 + 0.9·0.6 = 0.62
    assert float(fuzzy.blend_neural(0.6, fs, 0.10)) == pytest.approx(0.62)
    half = ForecastState(prob_bull=0.4, prob_bear=0.4, prob_neutral=0.2, confidence=0.5)
    # μ_n = 0.5·0.2 + 0.5·0.6 = 0.4; C = 0.3·0.4 + 0.7·0.6 = 0.54
    assert float(fuzzy.blend_neural(0.6, half, 0.30)) == pytest.approx(0.54)
    with pytest.raises(ConfigError):
        fuzzy.blend_neural(0.6, fs, 1.5)


@pytest.mark.parametrize(
    ("x", "points"),
    [(0.71, 30.0), (0.7, 20.0), (0.51, 20.0), (0.5, 10.0), (0.31, 10.0), (0.3, 0.0), (np.nan, 0.0)],
)
def test_confidence_tiers(x, points):
    assert scoring.confidence_points(x) == points


@pytest.mark.parametrize(("x", "points"), [(0.61, 30.0), (0.6, 20.0), (0.46, 20.0), (0.45, 10.0), (0.31, 10.0),
                                           (0.3, 0.0)])
def test_pop_tiers(x, points):
    assert scoring.probability_points(x) == points


def test_rule_and_direction_tiers_and_total():
    np.testing.assert_array_equal(scoring.rule_points(np.array([0.51, 0.5, 0.0, -0.01])), [30.0, 15.0, 15.0, 0.0])
    np.testing.assert_array_equal(scoring.direction_points(np.array([0.49, -0.49, 0.5, -0.7])), [10.0, 10.0, 0.0, 0.0])
    s = scoring.entry_score(0.65, 0.68, 0.2, 0.1)
    assert (s.s_conf, s.s_prob, s.s_rules, s.s_dir, s.total) == (20.0, 30.0, 15.0, 10.0, 75.0)
    vec = scoring.entry_score(np.array([0.2, 0.8]), np.array([0.25, 0.5]), np.array([-0.5, 0.9]), np.array([0.9, 0]))
    np.testing.assert_array_equal(vec.total, [0.0, 90.0])
    threshold = FuzzyConfig().score_threshold  # SPEC §5: 40
    assert scoring.should_enter(40.0, threshold)
    assert not scoring.should_enter(39.99, threshold)
    np.testing.assert_array_equal(scoring.should_enter(np.array([35.0, 45.0]), threshold=45.0), [False, True])


def test_pop_and_breach_from_short_deltas():
    assert scoring.breach_probability(-0.16, 0.14) == pytest.approx(0.30)
    assert scoring.probability_of_profit(-0.16, 0.14) == pytest.approx(0.70)
    np.testing.assert_allclose(scoring.probability_of_profit(np.array([-0.6, -0.1]), np.array([0.6, 0.2])), [0.0, 0.7])
    max_breach = StrategyConfig().max_breach_prob  # 0.60
    assert scoring.breach_filter(-0.30, 0.30, max_breach) is True
    assert scoring.breach_filter(-0.30, 0.31, max_breach) is False
    with pytest.raises(ConfigError, match="max breach probability 0 is invalid"):
        scoring.breach_filter(-0.1, 0.1, 0)
    np.testing.assert_array_equal(scoring.breach_filter(np.array([-0.1, -0.2]), np.array([0.1, 0.2]), 0.3),
                                  [True, False])
    assert scoring.direction_from_forecast(ForecastState(0.5, 0.2, 0.3, 0.9)) == pytest.approx(0.3)
    assert scoring.direction_from_forecast(None) == 0.0
