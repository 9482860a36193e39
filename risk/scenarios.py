"""Stress scenarios: full BSM revaluation of an option book beside its Greek approximation.

A book is a set of legs as arrays (strike, time to expiry ``tau`` in years, call/put, signed
contracts: + long, - short), the spot, and an implied volatility per leg.  Leg IVs are
sticky-strike: a scenario changes them only as it says.

A ``Scenario`` moves the spot by ``spot_return`` (``S1 = S0 (1 + spot_return)``), ages the
book by ``days_forward`` calendar days (``tau1 = max(tau - days / 365, 0)``), and moves each
leg's IV as

    sigma1 = max(IV_FLOOR, iv_scale * sigma0 + shift + k * (-ln(K / S1)))
    shift  = atm_iv_target - iv_scale * IV_ATM   (0 when no target is set)

where ``IV_ATM`` is the book's ATM volatility (given, or the leg IVs interpolated in
log-moneyness at ``ln(K/S0) = 0``) and ``k = skew_steepening``: puts below the money gain
``k`` vol per unit of -log-moneyness, calls above it lose as much, the ATM level is the
target.  Standard set (SPEC §6): flash crash -10%, gap down -5%, gap up +5% (IVs unchanged),
VIX to 50 (ATM IV 0.50, ``k = 0.5``: a 10%-OTM put gains 5.3 points over the ATM level),
volatility crush (IVs x 0.7).

Profit and loss in dollars: ``V = sum_i signed_qty_i * 100 * price_i``; full revaluation
``dV = V(S1, sigma1, tau1) - V(S0, sigma0, tau0)``; approximation
``dV ~ Delta dS + 1/2 Gamma dS^2 + sum_i vega_i (sigma1_i - sigma0_i) * 100 + Theta * days``
with position Greeks at the start (theta per day, vega per vol point).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analytics.pricing import Greeks, bsm_greeks
from core.dto import CONTRACT_MULTIPLIER, Leg, OptionRight
from risk.greeks import BookGreeks, greeks_from_arrays

IV_FLOOR = 0.01
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True, eq=False)
class OptionBook:
    """Option legs as arrays, with the spot, rates and per-leg implied volatilities."""

    spot: float
    strikes: np.ndarray
    taus: np.ndarray
    is_call: np.ndarray
    signed_qty: np.ndarray
    ivs: np.ndarray
    r: float = 0.0
    q: float = 0.0
    atm_iv: float | None = None

    def __post_init__(self) -> None:
        arrays = {"strikes": float, "taus": float, "is_call": bool, "signed_qty": float, "ivs": float}
        for name, kind in arrays.items():
            object.__setattr__(self, name, np.atleast_1d(np.asarray(getattr(self, name), dtype=kind)))
        n = self.strikes.shape
        for name in arrays:
            if getattr(self, name).shape != n:
                raise ValueError(f"OptionBook.{name} has shape {getattr(self, name).shape}, expected {n}")
        if not self.spot > 0 or np.any(self.strikes <= 0) or np.any(self.ivs <= 0) or np.any(self.taus < 0):
            raise ValueError("OptionBook needs spot > 0, strikes > 0, ivs > 0 and taus >= 0")

    @classmethod
    def from_legs(
        cls, legs: Sequence[Leg], spot: float, ivs: ArrayLike, as_of: dt.date,
        r: float = 0.0, q: float = 0.0, atm_iv: float | None = None,
    ) -> OptionBook:
        """Book of ``core.dto`` legs; ``tau = calendar days to expiry / 365`` from ``as_of``."""
        return cls(
            spot=spot,
            strikes=np.array([leg.contract.strike for leg in legs]),
            taus=np.array([(leg.contract.expiry - as_of).days / DAYS_PER_YEAR for leg in legs]),
            is_call=np.array([leg.contract.right is OptionRight.CALL for leg in legs]),
            signed_qty=np.array([leg.qty * leg.side.sign for leg in legs]),
            ivs=np.asarray(ivs, dtype=float), r=r, q=q, atm_iv=atm_iv,
        )

    def reference_atm_iv(self) -> float:
        """Given ``atm_iv``, else leg IVs interpolated at log-moneyness 0 (flat beyond the legs)."""
        if self.atm_iv is not None:
            return float(self.atm_iv)
        x = np.log(self.strikes / self.spot)
        order = np.argsort(x, kind="stable")
        return float(np.interp(0.0, x[order], self.ivs[order]))

    def leg_greeks(self) -> Greeks:
        """Per-share BSM price and Greeks of every leg (``analytics.pricing.Greeks``)."""
        return bsm_greeks(self.spot, self.strikes, self.taus, self.r, self.q, self.ivs, self.is_call)

    def greeks(self) -> BookGreeks:
        """Position Greeks of the whole book (SPEC units)."""
        return greeks_from_arrays(self.signed_qty, self.leg_greeks())

    def value(self) -> float:
        """``sum_i signed_qty_i * 100 * price_i`` (dollars; negative for a net short book)."""
        return float(np.dot(self.signed_qty * CONTRACT_MULTIPLIER, self.leg_greeks().price))


@dataclass(frozen=True, slots=True)
class Scenario:
    """A spot move, a volatility move and an ageing of the book (see the module docstring)."""

    name: str
    spot_return: float = 0.0
    iv_scale: float = 1.0
    atm_iv_target: float | None = None
    skew_steepening: float = 0.0
    days_forward: float = 0.0

    def __post_init__(self) -> None:
        if self.spot_return <= -1 or self.iv_scale <= 0 or self.days_forward < 0:
            raise ValueError(f"scenario {self.name!r}: need spot_return > -1, iv_scale > 0, days_forward >= 0")
        if self.atm_iv_target is not None and self.atm_iv_target <= 0:
            raise ValueError(f"scenario {self.name!r}: atm_iv_target must be positive")

    def shocked_ivs(self, book: OptionBook) -> np.ndarray:
        """Leg IVs after the scenario."""
        s1 = book.spot * (1.0 + self.spot_return)
        iv = self.iv_scale * book.ivs
        if self.atm_iv_target is not None:
            iv = iv + (self.atm_iv_target - self.iv_scale * book.reference_atm_iv())
        iv = iv + self.skew_steepening * (-np.log(book.strikes / s1))
        return np.maximum(iv, IV_FLOOR)


FLASH_CRASH = Scenario("flash_crash_-10%", spot_return=-0.10)
GAP_DOWN = Scenario("gap_down_-5%", spot_return=-0.05)
GAP_UP = Scenario("gap_up_+5%", spot_return=0.05)
VIX_50 = Scenario("vix_50_steep_skew", atm_iv_target=0.50, skew_steepening=0.5)
VOL_CRUSH = Scenario("vol_crush_-30%", iv_scale=0.7)
STANDARD_SCENARIOS: tuple[Scenario, ...] = (FLASH_CRASH, GAP_DOWN, GAP_UP, VIX_50, VOL_CRUSH)

REVALUE_COLUMNS = (
    "scenario", "spot", "spot_new", "value", "value_new", "pnl_full",
    "pnl_delta", "pnl_gamma", "pnl_vega", "pnl_theta", "pnl_approx", "approx_error",
)


def revalue(book: OptionBook, scenarios: Sequence[Scenario] = STANDARD_SCENARIOS) -> pd.DataFrame:
    """One row per scenario: full revaluation, Greek approximation and its error (approx - full).

    All scenarios x legs are priced in one vectorised ``bsm_greeks`` call.
    """
    base = book.leg_greeks()
    w = book.signed_qty * CONTRACT_MULTIPLIER
    book_g = greeks_from_arrays(book.signed_qty, base)
    s1 = book.spot * (1.0 + np.array([s.spot_return for s in scenarios]))
    days = np.array([s.days_forward for s in scenarios])
    iv1 = np.stack([s.shocked_ivs(book) for s in scenarios]) if scenarios else np.zeros((0, w.size))
    tau1 = np.maximum(book.taus[None, :] - days[:, None] / DAYS_PER_YEAR, 0.0)
    shocked = bsm_greeks(s1[:, None], book.strikes, tau1, book.r, book.q, iv1, book.is_call)
    value0 = float(np.dot(w, base.price))
    value1 = shocked.price @ w
    ds = s1 - book.spot
    pnl_delta = book_g.delta * ds
    pnl_gamma = 0.5 * book_g.gamma * ds**2
    pnl_vega = ((iv1 - book.ivs[None, :]) * 100.0) @ (w * base.vega)
    pnl_theta = book_g.theta * days
    approx = pnl_delta + pnl_gamma + pnl_vega + pnl_theta
    full = value1 - value0
    return pd.DataFrame({
        "scenario": [s.name for s in scenarios], "spot": book.spot, "spot_new": s1, "value": value0,
        "value_new": value1, "pnl_full": full, "pnl_delta": pnl_delta, "pnl_gamma": pnl_gamma,
        "pnl_vega": pnl_vega, "pnl_theta": pnl_theta, "pnl_approx": approx, "approx_error": approx - full,
    }, columns=list(REVALUE_COLUMNS))
