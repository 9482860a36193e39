"""Position and book Greeks from per-share leg Greeks.

SPEC units: a position Greek is ``sum_legs g_leg * 100 * contracts_leg * sign_leg`` with
``sign = +1`` long, ``-1`` short; ``g_leg`` is the per-share Greek of the option (delta per
$1, gamma per $1 per $1, theta per calendar day, vega per volatility point 0.01).  A leg's
contract count is ``Leg.qty`` (the total contracts of that leg, e.g. 2 for each leg of two
iron condors).  Delta of a book is in shares of the underlying.

Per-leg Greeks come in leg order as any object with array attributes ``delta, gamma, theta,
vega`` (e.g. ``LegGreeks`` here, ``data_factory.base.ContractMarks`` or
``analytics.pricing.Greeks``), so this module never touches a data source.

Beta weighting expresses a delta in SPY shares: ``delta * beta * price / spy_price``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from core.dto import CONTRACT_MULTIPLIER, Leg, Position


class PerShareGreeks(Protocol):
    """Per-share Greeks of the legs, arrays in leg order (read-only attributes suffice)."""

    @property
    def delta(self) -> np.ndarray: ...

    @property
    def gamma(self) -> np.ndarray: ...

    @property
    def theta(self) -> np.ndarray: ...

    @property
    def vega(self) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class LegGreeks:
    """Per-share Greeks of a list of legs (arrays in leg order)."""

    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray


@dataclass(frozen=True, slots=True)
class BookGreeks:
    """Greeks of a position or a book in SPEC units (shares, per day, per vol point)."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0

    def __add__(self, other: BookGreeks) -> BookGreeks:
        return BookGreeks(
            self.delta + other.delta, self.gamma + other.gamma, self.vega + other.vega, self.theta + other.theta
        )

    def scaled(self, factor: float) -> BookGreeks:
        """Greeks of ``factor`` copies (e.g. a one-lot candidate times the quantity)."""
        return BookGreeks(self.delta * factor, self.gamma * factor, self.vega * factor, self.theta * factor)

    def as_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "gamma": self.gamma, "vega": self.vega, "theta": self.theta}


def signed_contracts(legs: Sequence[Leg]) -> np.ndarray:
    """``qty * sign`` per leg (+ long, - short)."""
    return np.array([leg.qty * leg.side.sign for leg in legs], dtype=float)


def greeks_from_arrays(signed_qty: np.ndarray, marks: PerShareGreeks) -> BookGreeks:
    """``sum_i g_i * 100 * signed_qty_i`` for delta, gamma, vega and theta (vectorised)."""
    w = np.asarray(signed_qty, dtype=float) * CONTRACT_MULTIPLIER
    arrays = [np.asarray(getattr(marks, name), dtype=float) for name in ("delta", "gamma", "vega", "theta")]
    for name, arr in zip(("delta", "gamma", "vega", "theta"), arrays, strict=True):
        if arr.shape != w.shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected one value per leg {w.shape}")
    d, g, v, t = (float(np.dot(w, arr)) for arr in arrays)
    return BookGreeks(delta=d, gamma=g, vega=v, theta=t)


def position_greeks(position_or_legs: Position | Sequence[Leg], marks: PerShareGreeks) -> BookGreeks:
    """Greeks of one position (or a bare list of legs) from per-share leg Greeks in leg order."""
    legs = position_or_legs.legs if isinstance(position_or_legs, Position) else tuple(position_or_legs)
    return greeks_from_arrays(signed_contracts(legs), marks)


def portfolio_greeks(
    positions: Iterable[tuple[Position | Sequence[Leg], PerShareGreeks]], hedge_shares: float = 0.0
) -> BookGreeks:
    """Sum of position Greeks plus the delta of ``hedge_shares`` underlying shares (signed)."""
    total = BookGreeks(delta=float(hedge_shares))
    for position, marks in positions:
        total = total + position_greeks(position, marks)
    return total


def beta_weighted_delta(delta: ArrayLike, price: ArrayLike, beta: float, spy_price: ArrayLike) -> np.ndarray:
    """Delta in SPY shares: ``delta * beta * price / spy_price`` (dollar-delta equivalent); broadcasts."""
    spy = np.asarray(spy_price, dtype=float)
    if np.any(spy <= 0):
        raise ValueError(f"spy_price must be positive, got min {float(spy.min())}")
    return np.asarray(delta, dtype=float) * beta * np.asarray(price, dtype=float) / spy
