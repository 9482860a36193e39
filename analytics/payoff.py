"""Payoff at expiry of a multi-leg option structure — plain functions over arrays.

One unit of a structure is legs ``j`` with strike ``K_j``, right (call / put) and a signed
ratio ``w_j`` (+ long, − short).  Per share, with ``credit`` the net premium received
(negative for a debit)::

    payoff(S) = Σ_j w_j · intrinsic_j(S) + credit,   intrinsic = max(S − K, 0) | max(K − S, 0)

The payoff is piecewise linear with kinks at the strikes, so its minimum over S ≥ 0 is at
S = 0, at a strike, or unbounded when the slope beyond the highest strike is negative:

    max_loss   = max(0, −min payoff)      (inf when the loss is unbounded)
    breakevens = the roots of payoff(S)

>>> max_loss(np.array([95., 100., 110., 115.]), np.array([False, False, True, True]),
...          np.array([1., -1., -1., 1.]), credit=1.2)
3.8
"""

from __future__ import annotations

import numpy as np


def intrinsic(strikes: np.ndarray, is_call: np.ndarray, spot: float) -> np.ndarray:
    """Per-leg intrinsic value at ``spot``."""
    return np.where(is_call, np.maximum(spot - strikes, 0.0), np.maximum(strikes - spot, 0.0))


def payoff(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, credit: float, spot: float) -> float:
    """Per-share payoff of one unit at expiry for the underlying at ``spot``."""
    total = 0.0
    for value, w in zip(intrinsic(strikes, is_call, spot), ratios, strict=True):
        total += float(w) * float(value)
    return total + credit


def _kinks(strikes: np.ndarray) -> list[float]:
    return [0.0, *sorted({float(k) for k in strikes})]


def terminal_slope(is_call: np.ndarray, ratios: np.ndarray) -> float:
    """d payoff / dS above the highest strike (only calls count there)."""
    return float(np.sum(np.where(is_call, ratios, 0.0)))


def max_loss(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, credit: float) -> float:
    """Worst loss per share of one unit at expiry (0 when it cannot lose; inf when unbounded)."""
    if terminal_slope(is_call, ratios) < 0:
        return float("inf")
    worst = min(payoff(strikes, is_call, ratios, credit, s) for s in _kinks(strikes))
    return max(-worst, 0.0)


def breakevens(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, credit: float) -> tuple[float, ...]:
    """Underlying prices at expiry where the payoff crosses zero (sorted)."""
    xs = _kinks(strikes)
    ys = [payoff(strikes, is_call, ratios, credit, s) for s in xs]
    out: list[float] = []
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if y0 == 0.0:
            out.append(x0)
        elif y0 * y1 < 0:
            out.append(x0 + (x1 - x0) * y0 / (y0 - y1))
    slope = terminal_slope(is_call, ratios)
    if ys[-1] == 0.0:
        out.append(xs[-1])
    elif slope != 0 and ys[-1] * slope < 0:
        out.append(xs[-1] - ys[-1] / slope)
    return tuple(sorted(set(out)))
