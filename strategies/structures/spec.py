"""A structure is a declaration: legs with role, right, side, ratio, expiry slot and a strike rule.

Strike rules are data, resolved against one expiry slice with binary searches only:

* ``ByDelta()`` — the strike whose |delta| is nearest the target inside ``[delta_low, delta_high]``;
* ``WingOf(anchor, direction)`` — the nearest listed strike at least ``wing_min`` (plus the
  right's extra, e.g. the steep-skew put widening) beyond the anchor leg, at most ``wing_max``
  (both scaled by the spec's ``wing_scale``: 2 for the wide condor);
* ``Atm()`` — the at-the-money strike: the call whose delta is nearest 0.50;
* ``SkipOf(anchor, near, direction)`` — the broken-wing butterfly's far wing: the listed strike
  ``factor`` (2) times the near wing's distance beyond the anchor (one strike skipped);
* ``SameStrikeAs(anchor)`` — the anchor's strike on this leg's own expiry (a calendar's back month);

and ``below`` pairs say which strikes must be strictly ordered (short put below short call).
A leg's ``expiry_slot`` is 0 for the chosen (front) expiry and 1 for the back month, chosen
``back_gap_days`` after the front (calendars).

One generic computation serves every spec: the credit (shorts received minus longs paid, at
mid), payoff at expiry, max loss and breakevens (``analytics.payoff``; a two-expiry spec's
breakevens at the front expiry value the back leg with Black-Scholes at its quoted IV),
buying power, the breach probability ``Σ |Δ|`` of the short legs and the net Greeks.  Exits,
risk, the broker, outputs and reports only ever see these.

Buying power (Cboe / OCC rules for defined-risk positions, per unit, x 100):

* credit spreads, iron condors (wide or not): the widest wing's width minus the credit
  received — the condor margins one side only, since both cannot lose at once; unequal wings
  margin on the wider side;
* broken-wing butterfly for a credit: a butterfly (paid for, no requirement) plus a credit
  spread of the extra wing width — the far-wing width minus the near-wing width, minus the
  credit; equal to the worst payoff at expiry;
* long calendar (long back month, short front month at the same strike) and a long put: paid
  in full — the debit is the whole requirement, and it is also the max loss.

In every case the requirement is the worst payoff at expiry (``position_max_loss``), which is
what ``buying_power`` returns and the simulated venue holds.
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


@dataclass(frozen=True, slots=True)
class Atm:
    """The at-the-money strike: the one whose call delta is nearest 0.50 (forward ATM)."""


@dataclass(frozen=True, slots=True)
class SkipOf:
    """A broken wing ``factor`` x the near wing's distance beyond ``anchor`` (skips a strike at 2)."""

    anchor: LegRole
    near: LegRole
    direction: int
    factor: float = 2.0


@dataclass(frozen=True, slots=True)
class SameStrikeAs:
    """The strike of ``anchor`` on this leg's own expiry slot (a calendar's back month)."""

    anchor: LegRole


StrikeRule = ByDelta | WingOf | Atm | SkipOf | SameStrikeAs


@dataclass(frozen=True, slots=True)
class LegSpec:
    role: LegRole
    right: OptionRight
    side: Side
    rule: StrikeRule
    ratio: int = 1
    expiry_slot: int = 0  # 0 = the chosen expiry, 1 = the back month (calendars)


@dataclass(frozen=True, slots=True)
class StructureSpec:
    kind: StructureKind
    label: str  # short name in logs
    legs: tuple[LegSpec, ...]  # position order
    below: tuple[tuple[LegRole, LegRole], ...] = ()  # strike(a) < strike(b) required
    wing_scale: float = 1.0  # WingOf widths x this (the wide iron condor: 2)
    debit: bool = False  # opened for a debit (calendar, long put): no credit/width test
    back_gap_days: tuple[int, int] = (21, 42)  # back month: this many days after the front (slot 1)

    @property
    def slots(self) -> int:
        return 1 + max(leg.expiry_slot for leg in self.legs)

    @property
    def wing_defined(self) -> bool:
        """Every leg is a delta short or a plain wing: credit/width reads the widest wing."""
        return all(isinstance(leg.rule, ByDelta | WingOf) for leg in self.legs)

    @property
    def has_short(self) -> bool:
        return any(leg.side is Side.SHORT for leg in self.legs)

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
        """Widest distance between a wing (plain or broken) and the leg it protects."""
        widths = [abs(self.quote(leg.rule.anchor).strike - q.strike)
                  for leg, q in zip(self.spec.legs, self.quotes, strict=True) if isinstance(leg.rule, WingOf | SkipOf)]
        return max(widths) if widths else 0.0

    @property
    def risk_width(self) -> float:
        """The width the credit is measured against: the widest wing for condors and spreads;
        for other credit specs the width at risk, max loss + credit (a broken-wing butterfly:
        far wing - near wing); NaN for a debit spec."""
        if self.spec.wing_defined:
            return self.max_wing
        width = self.max_loss + self.credit_mid
        return width if width > 0 and not self.spec.debit else float("nan")

    @property
    def credit_ratio(self) -> float:
        """Credit / width (NaN for a debit structure)."""
        if self.spec.debit:
            return float("nan")
        return self.credit_mid / self.risk_width

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        strikes = np.array([q.strike for q in self.quotes], float)
        is_call = np.array([leg.right is OptionRight.CALL for leg in self.spec.legs])
        ratios = np.array([leg.side.sign * leg.ratio for leg in self.spec.legs], float)
        return strikes, is_call, ratios

    @property
    def max_loss(self) -> float:
        """Worst loss per share at (front) expiry at the mid credit.  For a calendar the generic
        payoff treats both legs as expiring together: the long back month is worth at least the
        short front month at the same strike, so the worst case is losing the debit."""
        return payoff.max_loss(*self._arrays(), credit=self.credit_mid)

    @property
    def back_expiry(self) -> dt.date | None:
        later = [q.contract.expiry for q in self.quotes if q.contract.expiry > self.expiry]
        return min(later) if later else None

    @property
    def breakevens(self) -> tuple[float, ...]:
        """Prices at the front expiry where the P&L is zero: intrinsic payoff for one-expiry
        specs; for a calendar, Black-Scholes of the back leg at its quoted IV over the gap."""
        back = self.back_expiry
        if back is None:
            return payoff.breakevens(*self._arrays(), credit=self.credit_mid)
        strikes, is_call, ratios = self._arrays()
        gap = np.array([(q.contract.expiry - self.expiry).days / 365.0 for q in self.quotes])
        iv = np.array([q.iv for q in self.quotes])
        return payoff.two_expiry_breakevens(strikes, is_call, ratios, gap, iv, self.credit_mid)

    @property
    def breach_probability(self) -> float:
        """Probability a short strike finishes in the money ≈ Σ |Δ| of the short legs (a leg
        sold in a ratio, the butterfly's body, is one strike: counted once)."""
        total = 0.0
        for leg, q in zip(self.spec.legs, self.quotes, strict=True):
            if leg.side is Side.SHORT:
                total += abs(q.delta)
        return total

    @property
    def max_profit(self) -> float:
        """Best payoff per share at (front) expiry at the mid credit (one-expiry specs)."""
        return payoff.max_profit(*self._arrays(), credit=self.credit_mid)

    def net_greek(self, name: str) -> float:
        """Per-share Greek of one unit (short legs count negative)."""
        return float(sum(leg.side.sign * leg.ratio * getattr(q, name)
                         for leg, q in zip(self.spec.legs, self.quotes, strict=True)))

    def order_legs(self, underlying: str) -> tuple[Leg, ...]:
        """Leg templates for one unit (entry price = mid; the venue fills the real price)."""
        return tuple(Leg(leg.role, OptionContract(underlying, q.contract.expiry, q.strike, leg.right), leg.side,
                         leg.ratio, q.mid) for leg, q in zip(self.spec.legs, self.quotes, strict=True))

    def describe(self) -> str:
        strikes = "/".join(f"{q.strike:g}" for q in sorted(self.quotes, key=lambda q: q.strike))
        back = self.back_expiry
        return f"{self.spec.label} {self.expiry}{f'/{back}' if back else ''} {strikes}"


def position_max_loss(legs: tuple[Leg, ...], units: int, credit: float) -> float:
    """Worst loss per share of one unit of filled ``legs`` (leg qty = ratio x units) at ``credit``."""
    strikes = np.array([leg.contract.strike for leg in legs], float)
    is_call = np.array([leg.contract.right is OptionRight.CALL for leg in legs])
    ratios = np.array([leg.side.sign * leg.qty / units for leg in legs], float)
    return payoff.max_loss(strikes, is_call, ratios, credit)


def buying_power(legs: tuple[Leg, ...], units: int, credit: float) -> float:
    """Defined-risk buying power in dollars: worst payoff at expiry x 100 x units (the Cboe rule
    of each spec, see the module docstring: widest wing - credit for a condor, the debit for a
    calendar or a long option)."""
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


def _atm(sl: ExpirySlice) -> int:
    """Index of the strike whose call delta is nearest 0.50 (call delta descends with the strike)."""
    j = _nearest_in_band(sl.call_delta[::-1], 0.5, 0.0, 1.0)
    return -1 if j < 0 else len(sl.strikes) - 1 - j


def _wing(sl: ExpirySlice, anchor: int, leg: LegSpec, rule: WingOf, p: SelectionParams,
          scale: float = 1.0) -> tuple[int, str]:
    extra = p.wing_extra.get(leg.right, 0.0)
    lo, hi = p.wing_min * scale + extra, p.wing_max * scale + extra
    strikes = sl.strikes
    if rule.direction < 0:
        j = int(np.searchsorted(strikes, strikes[anchor] - lo, side="right")) - 1
    else:
        j = int(np.searchsorted(strikes, strikes[anchor] + lo, side="left"))
    if j < 0 or j >= len(strikes):
        return -1, f"{sl.expiry}: strike grid too short for a {p.wing_min * scale:g}-wide wing"
    if abs(strikes[j] - strikes[anchor]) > hi + 1e-9:
        return -1, f"{sl.expiry}: nearest {leg.right.name.lower()} wing {abs(strikes[j] - strikes[anchor]):g} " \
                   f"wider than wing-max {p.wing_max * scale:g}"
    return j, ""


def _skip(sl: ExpirySlice, anchor: int, near: int, rule: SkipOf) -> tuple[int, str]:
    """The listed strike ``factor`` x |near - anchor| beyond the anchor (or the next one out)."""
    strikes = sl.strikes
    target = strikes[anchor] + rule.direction * rule.factor * abs(strikes[near] - strikes[anchor])
    if rule.direction < 0:
        j = int(np.searchsorted(strikes, target + 1e-9, side="right")) - 1
    else:
        j = int(np.searchsorted(strikes, target - 1e-9, side="left"))
    if j < 0 or j >= len(strikes):
        return -1, f"{sl.expiry}: strike grid too short for a broken wing at {target:g}"
    return j, ""


def select(spec: StructureSpec, sl: ExpirySlice, p: SelectionParams, underlying: str,
           ts: dt.datetime, back: ExpirySlice | None = None,
           fixed: Mapping[LegRole, float] | None = None) -> tuple[Candidate | None, str]:
    """Resolve every leg's strike rule: the candidate, or ``(None, why not)``.

    ``sl`` is the chosen (front) expiry, ``back`` the back month for slot-1 legs; ``fixed``
    pins roles to given strikes (a breakout adjust keeps the untested side).  Order: pinned
    strikes, delta / ATM strikes, the ``below`` constraints, wings, broken wings, same-strike
    legs on their slot's expiry — each a binary search."""
    if spec.slots > 1 and back is None:
        return None, f"{sl.expiry}: no back-month expiry {spec.back_gap_days[0]}-{spec.back_gap_days[1]} days later"
    slices = (sl, back if back is not None else sl)
    index: dict[LegRole, int] = {}
    for leg in spec.legs:
        if fixed and leg.role in fixed:
            i = slices[leg.expiry_slot].index_of(fixed[leg.role])
            if i < 0:
                return None, f"{sl.expiry}: kept {leg.role.value} {fixed[leg.role]:g} is not listed"
            index[leg.role] = i
        elif isinstance(leg.rule, ByDelta):
            i = _by_delta(slices[leg.expiry_slot], leg.right, p)
            if i < 0:
                return None, f"{sl.expiry}: no {leg.right.name.lower()} with |delta| in " \
                             f"[{p.delta_low:.2f}, {p.delta_high:.2f}]"
            index[leg.role] = i
        elif isinstance(leg.rule, Atm):
            i = _atm(slices[leg.expiry_slot])
            if i < 0:
                return None, f"{sl.expiry}: no at-the-money strike"
            index[leg.role] = i
    for a, b in spec.below:
        if sl.strikes[index[a]] >= sl.strikes[index[b]]:
            return None, f"{sl.expiry}: {a.value} {sl.strikes[index[a]]:g} not below {b.value} {sl.strikes[index[b]]:g}"
    for kind in (WingOf, SkipOf, SameStrikeAs):
        for leg in spec.legs:
            rule = leg.rule
            if leg.role in index or not isinstance(rule, kind):
                continue
            own = slices[leg.expiry_slot]
            if isinstance(rule, WingOf):
                j, why = _wing(own, index[rule.anchor], leg, rule, p, spec.wing_scale)
            elif isinstance(rule, SkipOf):
                j, why = _skip(own, index[rule.anchor], index[rule.near], rule)
            else:
                assert isinstance(rule, SameStrikeAs)
                anchor = spec.leg(rule.anchor)
                strike = float(slices[anchor.expiry_slot].strikes[index[rule.anchor]])
                j = own.index_of(strike)
                why = f"{own.expiry}: strike {strike:g} not listed on the back month"
            if j < 0:
                return None, why
            index[leg.role] = j
    quotes = tuple(slices[leg.expiry_slot].quote_at(index[leg.role], leg.right, underlying, ts) for leg in spec.legs)
    return Candidate(spec, sl.expiry, sl.dte, quotes), "ok"


def back_month(spec: StructureSpec, front: ExpirySlice, expiries: list[dt.date]) -> dt.date | None:
    """The back-month expiry of a two-slot spec: the listed expiry ``back_gap_days`` after the
    front nearest the gap's middle (the earlier on a tie); None when none is listed."""
    lo, hi = spec.back_gap_days
    mid = 0.5 * (lo + hi)
    fits = [e for e in expiries if lo <= (e - front.expiry).days <= hi]
    return min(fits, key=lambda e: (abs((e - front.expiry).days - mid), e)) if fits else None
