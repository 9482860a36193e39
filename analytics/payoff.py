"""Payoff at expiry of a multi-leg option structure — plain functions over arrays.

One unit of a structure is legs ``j`` with strike ``K_j``, right (call / put) and a signed
ratio ``w_j`` (+ long, − short).  Per share, with ``credit`` the net premium received
(negative for a debit)::

    payoff(S) = Σ_j w_j · intrinsic_j(S) + credit,   intrinsic = max(S − K, 0) | max(K − S, 0)

The payoff is piecewise linear with kinks at the strikes, so its minimum over S ≥ 0 is at
S = 0, at a strike, or unbounded when the slope beyond the highest strike is negative:

    max_loss   = max(0, −min payoff)      (inf when the loss is unbounded)
    breakevens = the roots of payoff(S)

A two-expiry structure (a calendar) is valued at the *front* expiry: legs that expire then
pay their intrinsic value, a later leg is worth its Black-Scholes value over the remaining
``gap`` (years) at its volatility (r = q = 0: the gap is weeks, the effect cents), so
``two_expiry_value`` / ``two_expiry_breakevens`` need no payoff table.

>>> max_loss(np.array([95., 100., 110., 115.]), np.array([False, False, True, True]),
...          np.array([1., -1., -1., 1.]), credit=1.2)
3.8
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr


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


def max_profit(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, credit: float) -> float:
    """Best payoff per share of one unit at expiry (inf when the gain is unbounded above)."""
    if terminal_slope(is_call, ratios) > 0:
        return float("inf")
    return max(payoff(strikes, is_call, ratios, credit, s) for s in _kinks(strikes))


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


def _bs(spot: float, strike: float, tau: float, sigma: float, is_call: bool) -> float:
    """Black-Scholes value with r = q = 0 (intrinsic at tau <= 0 or sigma <= 0)."""
    if tau <= 0 or sigma <= 0 or spot <= 0:
        return max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    sd = sigma * math.sqrt(tau)
    d1 = math.log(spot / strike) / sd + 0.5 * sd
    call = spot * float(ndtr(d1)) - strike * float(ndtr(d1 - sd))
    return call if is_call else call - spot + strike


def two_expiry_value(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, gap: np.ndarray,
                     sigma: np.ndarray, credit: float, spot: float) -> float:
    """P&L per share of one unit at the front expiry: legs with ``gap`` 0 at intrinsic, later
    legs at Black-Scholes over ``gap`` years at ``sigma``; plus the entry ``credit``."""
    total = credit
    for k, c, w, g, s in zip(strikes, is_call, ratios, gap, sigma, strict=True):
        total += float(w) * _bs(spot, float(k), float(g), float(s), bool(c))
    return total


def two_expiry_breakevens(strikes: np.ndarray, is_call: np.ndarray, ratios: np.ndarray, gap: np.ndarray,
                          sigma: np.ndarray, credit: float, steps: int = 400) -> tuple[float, ...]:
    """Prices at the front expiry where ``two_expiry_value`` crosses zero, found by scanning
    [strikes/2, 2 x strikes] and refining each sign change with Brent's method."""
    lo, hi = 0.5 * float(np.min(strikes)), 2.0 * float(np.max(strikes))
    xs = np.linspace(lo, hi, steps + 1)

    def f(x: float) -> float:
        return two_expiry_value(strikes, is_call, ratios, gap, sigma, credit, x)

    ys = [f(float(x)) for x in xs]
    out: list[float] = []
    for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:], strict=True):
        if y0 == 0.0:
            out.append(float(x0))
        elif y0 * y1 < 0:
            out.append(float(brentq(f, float(x0), float(x1), xtol=1e-10)))
    return tuple(out)
