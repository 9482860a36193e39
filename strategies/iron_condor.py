"""Iron-condor construction from one expiry slice — pure, binary searches only.

Short put and short call nearest the target |delta| inside the ``[delta_low, delta_high]``
band; long wings the smallest listed distance >= ``wing_min`` (and <= ``wing_max``) further
out.  Arithmetic per share (x 100 per contract):

    credit      = bid/ask mid of (short put + short call - long put - long call)
    max_loss    = max(put width, call width) - credit
    breakevens  = short put - credit, short call + credit
    credit/width ratio = credit / max(put width, call width)

>>> round(condor_max_loss(put_width=5.0, call_width=5.0, credit=1.20), 2)
3.8
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from core.dto import ExpirySlice, LegName, OptionQuote, OptionRight
from strategies.scoring import breach_probability


def condor_max_loss(put_width: float, call_width: float, credit: float) -> float:
    """Max loss per share of a short iron condor: widest wing - credit (never below 0)."""
    return max(max(put_width, call_width) - credit, 0.0)


def condor_breakevens(short_put: float, short_call: float, credit: float) -> tuple[float, float]:
    return short_put - credit, short_call + credit


@dataclass(frozen=True, slots=True)
class CondorCandidate:
    expiry: dt.date
    dte: int
    legs: dict[LegName, OptionQuote]

    @property
    def put_width(self) -> float:
        return self.legs[LegName.SHORT_PUT].strike - self.legs[LegName.LONG_PUT].strike

    @property
    def call_width(self) -> float:
        return self.legs[LegName.LONG_CALL].strike - self.legs[LegName.SHORT_CALL].strike

    @property
    def max_wing(self) -> float:
        return max(self.put_width, self.call_width)

    @property
    def credit_mid(self) -> float:
        q = self.legs
        return (q[LegName.SHORT_PUT].mid + q[LegName.SHORT_CALL].mid
                - q[LegName.LONG_PUT].mid - q[LegName.LONG_CALL].mid)

    @property
    def credit_ratio(self) -> float:
        return self.credit_mid / self.max_wing

    @property
    def max_loss(self) -> float:
        return condor_max_loss(self.put_width, self.call_width, self.credit_mid)

    @property
    def breach_probability(self) -> float:
        """Probability that either short strike finishes in the money, from the short deltas."""
        return float(breach_probability(self.legs[LegName.SHORT_PUT].delta, self.legs[LegName.SHORT_CALL].delta))

    def net_greek(self, name: str) -> float:
        """Per-share Greek of one condor unit (short legs count negative)."""
        sign = {LegName.SHORT_PUT: -1, LegName.SHORT_CALL: -1, LegName.LONG_PUT: 1, LegName.LONG_CALL: 1}
        return float(sum(sign[n] * getattr(q, name) for n, q in self.legs.items()))


def _nearest_in_band(abs_delta: np.ndarray, target: float, low: float, high: float) -> int:
    """Index whose |delta| is nearest ``target`` within [low, high]; ``abs_delta`` ascending."""
    i = int(np.searchsorted(abs_delta, target))
    best, best_err = -1, np.inf
    for j in (i - 1, i):
        if 0 <= j < len(abs_delta) and low <= abs_delta[j] <= high and abs(abs_delta[j] - target) < best_err:
            best, best_err = j, abs(abs_delta[j] - target)
    return best


def build_condor(
    sl: ExpirySlice,
    target_delta: float,
    delta_low: float,
    delta_high: float,
    wing_min: float,
    wing_max: float,
    put_wing_extra: float = 0.0,
    underlying: str = "SPY",
    ts: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
) -> tuple[CondorCandidate | None, str]:
    """The condor of this expiry, or ``(None, reason)`` saying why none fits."""
    strikes = sl.strikes
    put_abs = np.abs(sl.put_delta)  # ascending in strike
    call_abs_rev = np.abs(sl.call_delta[::-1])  # ascending as strikes fall
    ip = _nearest_in_band(put_abs, target_delta, delta_low, delta_high)
    ic_rev = _nearest_in_band(call_abs_rev, target_delta, delta_low, delta_high)
    if ip < 0 or ic_rev < 0:
        side = "put" if ip < 0 else "call"
        return None, f"{sl.expiry}: no {side} with |delta| in [{delta_low:.2f}, {delta_high:.2f}]"
    ic = len(strikes) - 1 - ic_rev
    if strikes[ip] >= strikes[ic]:
        return None, f"{sl.expiry}: short put {strikes[ip]:g} not below short call {strikes[ic]:g}"
    put_min, put_max = wing_min + put_wing_extra, wing_max + put_wing_extra
    jp = int(np.searchsorted(strikes, strikes[ip] - put_min, side="right")) - 1
    jc = int(np.searchsorted(strikes, strikes[ic] + wing_min, side="left"))
    if jp < 0 or jc >= len(strikes):
        return None, f"{sl.expiry}: strike grid too short for a {wing_min:g}-wide wing"
    put_w, call_w = strikes[ip] - strikes[jp], strikes[jc] - strikes[ic]
    if put_w > put_max + 1e-9 or call_w > wing_max + 1e-9:
        return None, f"{sl.expiry}: nearest wings {put_w:g}/{call_w:g} wider than wing-max {wing_max:g}"
    legs = {
        LegName.SHORT_PUT: sl.quote_at(ip, OptionRight.PUT, underlying, ts),
        LegName.LONG_PUT: sl.quote_at(jp, OptionRight.PUT, underlying, ts),
        LegName.SHORT_CALL: sl.quote_at(ic, OptionRight.CALL, underlying, ts),
        LegName.LONG_CALL: sl.quote_at(jc, OptionRight.CALL, underlying, ts),
    }
    return CondorCandidate(sl.expiry, sl.dte, legs), "ok"


def liquidity_problem(c: CondorCandidate, max_rel_spread: float, min_volume: float, min_oi: float) -> str | None:
    """The first liquidity failure of a candidate, or None when it passes."""
    for name, q in c.legs.items():
        if q.ask <= 0:
            return f"{name.value} {q.strike:g} has no offer"
    for name in (LegName.SHORT_PUT, LegName.SHORT_CALL):
        q = c.legs[name]
        if q.rel_spread > max_rel_spread:
            return f"{name.value} spread {q.rel_spread:.2f} of mid > {max_rel_spread:.2f}"
        if q.volume < min_volume:
            return f"{name.value} volume {q.volume:.0f} < {min_volume:.0f}"
        if q.open_interest < min_oi:
            return f"{name.value} open interest {q.open_interest:.0f} < {min_oi:.0f}"
    return None
