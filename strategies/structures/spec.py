"""A structure is a declaration: legs with role, right, side, ratio, expiry slot and a strike rule.

Strike rules are data, resolved against one expiry slice with binary searches only:

* ``ByDelta()`` — the strike whose |delta| is nearest the target inside ``[delta_low, delta_high]``;
* ``WingOf(anchor, direction)`` — the nearest listed strike at least ``wing_min`` (plus the
  right's extra, e.g. the steep-skew put widening) beyond the anchor leg, at most ``wing_max``;

and ``below`` pairs say which strikes must be strictly ordered (short put below short call).
One generic computation serves every spec: the credit (shorts received minus longs paid, at
mid), payoff at expiry, max loss and breakevens (``analytics.payoff``), defined-risk buying
power = max loss x 100 per unit, the breach probability ``Σ |Δ|`` of the short legs and the
net Greeks.  Exits, risk, the broker, outputs and reports only ever see these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from analytics import payoff
from core.dto import CONTRACT_MULTIPLIER, ExpirySlice, Leg, LegRole, OptionContract, OptionQuote, OptionRight, Side
from core.dto import Structure as StructureKind


@dataclass(frozen=True, slots=True)
class ByDelta:
    """Short strike nearest the target |delta| within the configured band."""


@dataclass(frozen=True, slots=True)
class WingOf:
    """Protective wing beyond ``anchor``: ``direction`` -1 below it (puts), +1 above (calls)."""

    anchor: LegRole
    direction: int


StrikeRule = ByDelta | WingOf


@dataclass(frozen=True, slots=True)
class LegSpec:
    role: LegRole
    right: OptionRight
    side: Side
    rule: StrikeRule
    ratio: int = 1
    expiry_slot: int = 0  # 0 = the chosen expiry (a calendar's back month would be slot 1)


@dataclass(frozen=True, slots=True)
class StructureSpec:
    kind: StructureKind
    label: str  # short name in logs
    legs: tuple[LegSpec, ...]  # position order
    below: tuple[tuple[LegRole, LegRole], ...] = ()  # strike(a) < strike(b) required

    def leg(self, role: LegRole) -> LegSpec:
        for leg in self.legs:
            if leg.role is role:
                return leg
        raise KeyError(role)


@dataclass(frozen=True, slots=True)
class SelectionParams:
    target_delta: float
    delta_low: float
    delta_high: float
    wing_min: float
    wing_max: float
    wing_extra: Mapping[OptionRight, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One unit of a spec on one expiry with its quotes (legs in spec order)."""

    spec: StructureSpec
    expiry: dt.date
    dte: int
    quotes: tuple[OptionQuote, ...]

    def quote(self, role: LegRole) -> OptionQuote:
        for leg, q in zip(self.spec.legs, self.quotes, strict=True):
            if leg.role is role:
                return q
        raise KeyError(role)

    @property
    def credit_mid(self) -> float:
        """Net credit per share at mid: short legs received, then long legs paid."""
        credit = 0.0
        for leg, q in zip(self.spec.legs, self.quotes, strict=True):
            if leg.side is Side.SHORT:
                credit += leg.ratio * q.mid
        for leg, q in zip(self.spec.legs, self.quotes, strict=True):
            if leg.side is Side.LONG:
                credit -= leg.ratio * q.mid
        return credit

    @property
    def max_wing(self) -> float:
        """Widest distance between a wing and the leg it protects."""
        widths = [abs(self.quote(leg.rule.anchor).strike - q.strike)
                  for leg, q in zip(self.spec.legs, self.quotes, strict=True) if isinstance(leg.rule, WingOf)]
        return max(widths) if widths else 0.0

    @property
    def credit_ratio(self) -> float:
        return self.credit_mid / self.max_wing

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        strikes = np.array([q.strike for q in self.quotes], float)
        is_call = np.array([leg.right is OptionRight.CALL for leg in self.spec.legs])
        ratios = np.array([leg.side.sign * leg.ratio for leg in self.spec.legs], float)
        return strikes, is_call, ratios

    @property
    def max_loss(self) -> float:
        """Worst loss per share at expiry at the mid credit."""
        return payoff.max_loss(*self._arrays(), credit=self.credit_mid)

    @property
    def breakevens(self) -> tuple[float, ...]:
        return payoff.breakevens(*self._arrays(), credit=self.credit_mid)

    @property
    def breach_probability(self) -> float:
        """Probability a short strike finishes in the money ≈ Σ |Δ| of the short legs."""
        total = 0.0
        for leg, q in zip(self.spec.legs, self.quotes, strict=True):
            if leg.side is Side.SHORT:
                total += abs(q.delta) * leg.ratio
        return total

    def net_greek(self, name: str) -> float:
        """Per-share Greek of one unit (short legs count negative)."""
        return float(sum(leg.side.sign * leg.ratio * getattr(q, name)
                         for leg, q in zip(self.spec.legs, self.quotes, strict=True)))

    def order_legs(self, underlying: str) -> tuple[Leg, ...]:
        """Leg templates for one unit (entry price = mid; the venue fills the real price)."""
        return tuple(Leg(leg.role, OptionContract(underlying, self.expiry, q.strike, leg.right), leg.side, leg.ratio,
                         q.mid) for leg, q in zip(self.spec.legs, self.quotes, strict=True))

    def describe(self) -> str:
        strikes = "/".join(f"{q.strike:g}" for q in sorted(self.quotes, key=lambda q: q.strike))
        return f"{self.spec.label} {self.expiry} {strikes}"


def position_max_loss(legs: tuple[Leg, ...], units: int, credit: float) -> float:
    """Worst loss per share of one unit of filled ``legs`` (leg qty = ratio x units) at ``credit``."""
    strikes = np.array([leg.contract.strike for leg in legs], float)
    is_call = np.array([leg.contract.right is OptionRight.CALL for leg in legs])
    ratios = np.array([leg.side.sign * leg.qty / units for leg in legs], float)
    return payoff.max_loss(strikes, is_call, ratios, credit)


def buying_power(legs: tuple[Leg, ...], units: int, credit: float) -> float:
    """Defined-risk buying power in dollars: worst payoff at expiry x 100 x units."""
    return position_max_loss(legs, units, credit) * CONTRACT_MULTIPLIER * units


def _nearest_in_band(abs_delta: np.ndarray, target: float, low: float, high: float) -> int:
    """Index whose |delta| is nearest ``target`` within [low, high]; ``abs_delta`` ascending."""
    i = int(np.searchsorted(abs_delta, target))
    best, best_err = -1, np.inf
    for j in (i - 1, i):
        if 0 <= j < len(abs_delta) and low <= abs_delta[j] <= high and abs(abs_delta[j] - target) < best_err:
            best, best_err = j, abs(abs_delta[j] - target)
    return best


def _by_delta(sl: ExpirySlice, right: OptionRight, p: SelectionParams) -> int:
    if right is OptionRight.PUT:  # |put delta| ascends with the strike
        return _nearest_in_band(np.abs(sl.put_delta), p.target_delta, p.delta_low, p.delta_high)
    j = _nearest_in_band(np.abs(sl.call_delta[::-1]), p.target_delta, p.delta_low, p.delta_high)
    return -1 if j < 0 else len(sl.strikes) - 1 - j


def _wing(sl: ExpirySlice, anchor: int, leg: LegSpec, rule: WingOf, p: SelectionParams) -> tuple[int, str]:
    extra = p.wing_extra.get(leg.right, 0.0)
    lo, hi = p.wing_min + extra, p.wing_max + extra
    strikes = sl.strikes
    if rule.direction < 0:
        j = int(np.searchsorted(strikes, strikes[anchor] - lo, side="right")) - 1
    else:
        j = int(np.searchsorted(strikes, strikes[anchor] + lo, side="left"))
    if j < 0 or j >= len(strikes):
        return -1, f"{sl.expiry}: strike grid too short for a {p.wing_min:g}-wide wing"
    if abs(strikes[j] - strikes[anchor]) > hi + 1e-9:
        return -1, f"{sl.expiry}: nearest {leg.right.name.lower()} wing {abs(strikes[j] - strikes[anchor]):g} " \
                   f"wider than wing-max {p.wing_max:g}"
    return j, ""


def select(spec: StructureSpec, sl: ExpirySlice, p: SelectionParams, underlying: str,
           ts: dt.datetime) -> tuple[Candidate | None, str]:
    """Resolve every leg's strike rule on ``sl``: the candidate, or ``(None, why not)``."""
    index: dict[LegRole, int] = {}
    for leg in spec.legs:
        if isinstance(leg.rule, ByDelta):
            i = _by_delta(sl, leg.right, p)
            if i < 0:
                return None, f"{sl.expiry}: no {leg.right.name.lower()} with |delta| in " \
                             f"[{p.delta_low:.2f}, {p.delta_high:.2f}]"
            index[leg.role] = i
    for a, b in spec.below:
        if sl.strikes[index[a]] >= sl.strikes[index[b]]:
            return None, f"{sl.expiry}: {a.value} {sl.strikes[index[a]]:g} not below {b.value} {sl.strikes[index[b]]:g}"
    for leg in spec.legs:
        if isinstance(leg.rule, WingOf):
            j, why = _wing(sl, index[leg.rule.anchor], leg, leg.rule, p)
            if j < 0:
                return None, why
            index[leg.role] = j
    quotes = tuple(sl.quote_at(index[leg.role], leg.right, underlying, ts) for leg in spec.legs)
    return Candidate(spec, sl.expiry, sl.dte, quotes), "ok"
