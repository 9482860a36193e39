"""PBO (CSCV) and the Deflated Sharpe Ratio, pinned to worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.overfitting import (
    deflated_sharpe_ratio,
    dsr_of_returns,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
)


def test_dsr_worked_example_of_bailey_and_lopez_de_prado() -> None:
    """The paper's example: annual SR 2.5 selected from N = 100 trials whose annual Sharpe
    variance is 0.5, five years of daily returns (T = 1250, 250 a year), skew -3, kurtosis 10:
    SR0 = 0.1132 per day (1.79 a year) and DSR = 0.9004."""
    res = deflated_sharpe_ratio(2.5 / math.sqrt(250), 100, 0.5 / 250, 1250, skew=-3.0, kurtosis=10.0)
    assert res.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert res.sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=5e-4)
    assert res.dsr == pytest.approx(0.9004, abs=5e-5)


def test_dsr_hand_worked_cases() -> None:
    # one trial: SR0 = 0, PSR = Phi(0.1 * sqrt(100) / sqrt(1 + (3 - 1) / 4 * 0.01)) = Phi(0.997509) = 0.840741
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert deflated_sharpe_ratio(0.1, 1, 0.0, 101).dsr == pytest.approx(0.840741, abs=1e-6)
    # ten trials, V = 0.01: SR0 = 0.1 * (0.422784 * 1.281552 + 0.577216 * 1.789242) = 0.157460
    assert expected_max_sharpe(10, 0.01) == pytest.approx(0.157460, abs=1e-6)
    # an SR exactly at the benchmark is a coin flip
    assert probabilistic_sharpe_ratio(0.05, 0.05, 500, -1.0, 6.0) == pytest.approx(0.5)
    # more trials deflate more
    assert deflated_sharpe_ratio(0.1, 1000, 0.002, 500).dsr < deflated_sharpe_ratio(0.1, 10, 0.002, 500).dsr


def test_dsr_of_returns_uses_sample_moments() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 750)
    res = dsr_of_returns(r, np.array([0.0, 0.05, 0.1, -0.02]))
    sr = r.mean() / r.std(ddof=1)
    assert res.sr == pytest.approx(sr)
    assert res.n_trials == 4 and res.n_obs == 750
    assert res.sr_variance == pytest.approx(np.var([0.0, 0.05, 0.1, -0.02], ddof=1))
    assert abs(res.skew) < 0.3 and res.kurtosis == pytest.approx(3.0, abs=0.5)


def test_pbo_of_pure_noise_is_about_one_half() -> None:
    rng = np.random.default_rng(11)
    values = [pbo_cscv(rng.normal(0.0, 0.01, (320, 16)), n_splits=10).pbo for _ in range(12)]
    assert 0.35 <= float(np.mean(values)) <= 0.65


def test_pbo_is_low_when_one_strategy_is_genuinely_better() -> None:
    rng = np.random.default_rng(5)
    m = rng.normal(0.0, 0.01, (480, 20))
    m[:, 7] += 0.004  # a real edge of 0.4 standard deviations a day
    res = pbo_cscv(m, n_splits=16)
    assert res.n_combinations == 12870  # C(16, 8)
    assert res.pbo < 0.05
    assert res.prob_oos_loss < 0.05


def test_pbo_rank_logit_by_hand() -> None:
    """Two blocks, three strategies: block 1 ranks A > B > C, block 2 ranks C > B > A.
    Combination {1}: IS winner A ranks 1 of 3 OOS -> w = 1/4, logit ln(1/3) < 0 (overfit);
    combination {2}: IS winner C ranks 1 of 3 OOS -> the same.  PBO = 1."""
    a = np.array([[3.0, 2.0, 1.0], [3.5, 2.5, 0.5], [-1.0, 0.0, 2.0], [-0.5, 0.5, 3.0]]) * 0.01
    res = pbo_cscv(a, n_splits=2)
    assert res.n_combinations == 2
    assert res.pbo == 1.0
    assert np.allclose(res.logits, math.log(1 / 3))


def test_pbo_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="two configurations"):
        pbo_cscv(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="n_splits"):
        pbo_cscv(np.zeros((10, 3)), n_splits=3)
