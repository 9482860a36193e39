"""Value at Risk and Conditional VaR of daily P&L: historical and Monte Carlo (bootstrap).

Quantile convention (Hyndman-Fan type 7, numpy's ``method="linear"``): for sorted P&L
``x_(1) <= ... <= x_(n)`` and tail probability ``p = 1 - level``,

    h = (n - 1) p,   Q_p = x_(floor(h)+1) + (h - floor(h)) (x_(floor(h)+2) - x_(floor(h)+1))

(1-based order statistics).  VaR is reported as a positive loss in dollars,
``VaR_level = -Q_p``; CVaR (expected shortfall) is minus the mean of the observations at or
below that quantile, ``CVaR_level = -mean(x_i : x_i <= Q_p)`` — so ``CVaR >= VaR`` always.
A negative VaR means even the tail quantile is a gain.

Example, P&L ``[-10, -5, 0, 5, 10]`` at 95%: ``h = 4 * 0.05 = 0.2``,
``Q = -10 + 0.2 * 5 = -9``, VaR = 9, CVaR = 10.

Monte Carlo: ``n_paths`` horizons of ``horizon_days`` daily P&Ls drawn with replacement from
the history (i.i.d. bootstrap with an explicit ``numpy.random.Generator``), summed per path;
VaR and CVaR are then read from the simulated sums with the same estimator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_LEVELS: tuple[float, ...] = (0.95, 0.99)
DEFAULT_PERCENTILES: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)


def _as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _clean_pnl(pnl: ArrayLike) -> np.ndarray:
    x = np.asarray(pnl, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("VaR needs at least one finite P&L value")
    return x


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def empirical_quantile(x: ArrayLike, p: float) -> float:
    """Lower-tail empirical quantile with linear interpolation between order statistics (type 7)."""
    return float(np.quantile(_clean_pnl(x), p, method="linear"))


def historical_var(pnl: ArrayLike, level: float = 0.95) -> float:
    """``-Q_{1-level}(pnl)``: the loss not exceeded with probability ``level``."""
    _check_level(level)
    return -empirical_quantile(pnl, 1.0 - level)


def historical_cvar(pnl: ArrayLike, level: float = 0.95) -> float:
    """``-mean(pnl_i : pnl_i <= Q_{1-level})``: the mean loss in the tail beyond VaR."""
    _check_level(level)
    x = _clean_pnl(pnl)
    q = float(np.quantile(x, 1.0 - level, method="linear"))
    return -float(np.mean(x[x <= q]))


def var_table(pnl: ArrayLike, levels: Sequence[float] = DEFAULT_LEVELS) -> dict[str, float]:
    """``{'var_95': .., 'cvar_95': .., 'var_99': .., 'cvar_99': ..}`` (keys from the level in %)."""
    out: dict[str, float] = {}
    for level in levels:
        tag = f"{round(level * 100, 6):g}".replace(".", "_")
        out[f"var_{tag}"] = historical_var(pnl, level)
        out[f"cvar_{tag}"] = historical_cvar(pnl, level)
    return out


def bootstrap_sums(
    values: ArrayLike, n_paths: int, path_length: int, seed: int | np.random.Generator = 7
) -> np.ndarray:
    """``n_paths`` sums of ``path_length`` draws with replacement from ``values``, shape ``(n_paths,)``."""
    x = _clean_pnl(values)
    if n_paths < 1 or path_length < 1:
        raise ValueError(f"n_paths and path_length must be >= 1, got {n_paths}, {path_length}")
    idx = _as_rng(seed).integers(0, x.size, size=(n_paths, path_length))
    return x[idx].sum(axis=1)


def monte_carlo_var(
    pnl: ArrayLike,
    n_paths: int = 10_000,
    horizon_days: int = 1,
    seed: int | np.random.Generator = 7,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> dict[str, float]:
    """VaR / CVaR of the ``horizon_days`` P&L from a bootstrap of daily P&L (keys as ``var_table``)."""
    return var_table(bootstrap_sums(pnl, n_paths, horizon_days, seed), levels)


def monte_carlo_final_equity(
    trade_pnls: ArrayLike,
    start_equity: float,
    n_paths: int = 10_000,
    seed: int | np.random.Generator = 7,
    n_trades: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> dict[str, float]:
    """Percentiles of final equity over bootstrapped trade sequences, plus the loss probability.

    Each path draws ``n_trades`` (default: as many as observed) trade P&Ls with replacement;
    final equity ``= start_equity + sum``.  Keys ``p1, p5, ..., p99`` (type-7 percentiles),
    ``mean`` and ``prob_loss`` (share of paths ending below ``start_equity``).
    """
    x = _clean_pnl(trade_pnls)
    finals = start_equity + bootstrap_sums(x, n_paths, n_trades or x.size, seed)
    out = {f"p{p:g}": float(np.percentile(finals, p, method="linear")) for p in percentiles}
    out["mean"] = float(finals.mean())
    out["prob_loss"] = float(np.mean(finals < start_equity))
    return out
