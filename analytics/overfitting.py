"""Overfitting statistics of a parameter search — own implementation, numpy/scipy only.

**PBO** — Probability of Backtest Overfitting by combinatorially symmetric cross-validation
(CSCV; Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting",
J. Computational Finance 2017).  The T x N matrix of per-period returns of N configurations is
cut into S consecutive blocks of rows (``numpy.array_split``: sizes differ by at most one).
For each of the C(S, S/2) ways to pick half of the blocks as in-sample (the rest is
out-of-sample), the configuration with the best in-sample Sharpe ratio is found; its
out-of-sample relative rank ``w = rank / (N + 1)`` (ranks 1..N ascending, ties averaged) gives
the logit ``lambda = ln(w / (1 - w))``.  PBO is the share of combinations with ``lambda <= 0``:
the in-sample winner is at or below the out-of-sample median.  Pure noise gives about 0.5; a
genuinely better configuration gives about 0.  In-sample ties pick the first column.

**DSR** — Deflated Sharpe Ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", J.
Portfolio Management 2014): the Probabilistic Sharpe Ratio of the selected configuration
against the expected maximum Sharpe ratio of N independent trials with Sharpe variance V:

    SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e))),  g = Euler-Mascheroni
    DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

with SR, SR0 and V per period (not annualised) and ``kurt`` the plain (non-excess) kurtosis.
Pinned to the paper's worked example (annual SR 2.5, annual V 0.5 over 250 days/year, N 100,
T 1250, skew -3, kurtosis 10: SR0 = 0.1132 per day, DSR = 0.9004) in
``tests/test_overfitting.py``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True, slots=True)
class PBOResult:
    pbo: float  # share of combinations whose in-sample winner ranks at or below the OOS median
    logits: np.ndarray  # lambda per combination
    n_splits: int  # S
    n_combinations: int
    n_strategies: int
    is_best: np.ndarray  # in-sample Sharpe of the selected configuration per combination
    oos_of_best: np.ndarray  # its out-of-sample Sharpe
    degradation_slope: float | None  # OLS slope of oos_of_best on is_best (negative: overfit decay)
    prob_oos_loss: float  # share of combinations where the selected configuration's OOS Sharpe < 0


def _sharpe_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ``mean / std (ddof 1)`` from sums and sums of squares; 0 where std is 0."""
    mean = s1 / n
    var = np.maximum(s2 - n * mean * mean, 0.0) / np.maximum(n - 1, 1)
    sd = np.sqrt(var)
    tiny = 1e-12 * np.maximum(np.abs(mean), 1e-300)
    return np.where(sd > tiny, mean / np.where(sd > 0, sd, 1.0), 0.0)


def pbo_cscv(returns: np.ndarray, n_splits: int = 16, max_combinations: int = 20_000,
             seed: int = 0) -> PBOResult:
    """PBO of a T x N return matrix (rows: periods, columns: configurations) by CSCV.

    ``n_splits`` S must be even, >= 2 and <= T.  With more than ``max_combinations``
    combinations a seeded random subset of that size is used."""
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2:
        raise ValueError("returns must be a 2-D array (periods x configurations)")
    t, n = m.shape
    if n < 2:
        raise ValueError("PBO needs at least two configurations")
    if n_splits < 2 or n_splits % 2 or n_splits > t:
        raise ValueError(f"n_splits must be even, >= 2 and <= the number of periods ({t}), got {n_splits}")
    m = np.nan_to_num(m, nan=0.0)
    blocks = np.array_split(np.arange(t), n_splits)
    s1 = np.stack([m[b].sum(axis=0) for b in blocks])  # S x N
    s2 = np.stack([(m[b] ** 2).sum(axis=0) for b in blocks])
    cnt = np.array([len(b) for b in blocks], dtype=float)
    combos = list(itertools.combinations(range(n_splits), n_splits // 2))
    if len(combos) > max_combinations:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(combos), size=max_combinations, replace=False))
        combos = [combos[i] for i in pick]
    total1, total2, total_n = s1.sum(axis=0), s2.sum(axis=0), cnt.sum()
    logits, is_best, oos_best = [], [], []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, len(combos), chunk):
        part = combos[start:start + chunk]
        mask = np.zeros((len(part), n_splits))
        for row, c in enumerate(part):
            mask[row, list(c)] = 1.0
        in1, in2, inn = mask @ s1, mask @ s2, mask @ cnt
        sr_in = _sharpe_from_sums(in1, in2, inn[:, None])
        sr_out = _sharpe_from_sums(total1 - in1, total2 - in2, (total_n - inn)[:, None])
        best = np.argmax(sr_in, axis=1)
        rows = np.arange(len(part))
        ranks = rankdata(sr_out, axis=1, method="average")
        w = ranks[rows, best] / (n + 1.0)
        logits.append(np.log(w / (1.0 - w)))
        is_best.append(sr_in[rows, best])
        oos_best.append(sr_out[rows, best])
    lam = np.concatenate(logits)
    x, y = np.concatenate(is_best), np.concatenate(oos_best)
    slope = None
    if len(x) > 1 and float(np.var(x)) > 0:
        slope = float(np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1))
    return PBOResult(float(np.mean(lam <= 0.0)), lam, n_splits, len(lam), n, x, y, slope, float(np.mean(y < 0)))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """SR0: the expected maximum Sharpe ratio of ``n_trials`` independent zero-skill trials whose
    Sharpe ratios have variance ``sr_variance`` (per period)."""
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1:
        return 0.0
    sd = math.sqrt(max(sr_variance, 0.0))
    return sd * ((1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n_trials)
                 + EULER_GAMMA * norm.ppf(1.0 - 1.0 / (n_trials * math.e)))


def probabilistic_sharpe_ratio(sr: float, benchmark: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """PSR: probability that the true per-period Sharpe exceeds ``benchmark`` (kurtosis non-excess)."""
    if n_obs < 2:
        raise ValueError("n_obs must be >= 2")
    den = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if den <= 0:
        return float("nan")
    return float(norm.cdf((sr - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(den)))


@dataclass(frozen=True, slots=True)
class DSRResult:
    dsr: float
    sr: float  # per period
    sr0: float  # expected maximum per period
    n_trials: int
    sr_variance: float
    n_obs: int
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(sr: float, n_trials: int, sr_variance: float, n_obs: int, skew: float = 0.0,
                          kurtosis: float = 3.0) -> DSRResult:
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return DSRResult(probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis), sr, sr0, n_trials, sr_variance,
                     n_obs, skew, kurtosis)


def dsr_of_returns(selected: np.ndarray, trial_sharpes: np.ndarray) -> DSRResult:
    """DSR of the selected configuration's per-period returns, given every trial's per-period Sharpe."""
    r = np.asarray(selected, float)
    r = r[np.isfinite(r)]
    sharpes = np.asarray(trial_sharpes, float)
    sharpes = sharpes[np.isfinite(sharpes)]
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    sr = float(np.mean(r)) / sd if sd > 0 else 0.0
    skew, kurt = 0.0, 3.0
    if sd > 0:
        z = (r - r.mean()) / np.std(r)
        skew, kurt = float(np.mean(z ** 3)), float(np.mean(z ** 4))
    var = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    return deflated_sharpe_ratio(sr, max(int(sharpes.size), 1), var, int(r.size), skew, kurt)
