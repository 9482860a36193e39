"""Hand-worked payoff, max loss, breakevens and buying power of every structure spec, and their
strike / expiry selection on hand-built expiry slices (no market source, milliseconds).

Money per share of one unit; buying power in dollars (x 100 per contract)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from analytics import payoff
from core.dto import ExpirySlice, Leg, LegRole, OptionContract, OptionQuote, OptionRight, Side, Structure
from strategies.structures.catalog import (
    CALL_BROKEN_WING_BUTTERFLY,
    CALL_CALENDAR,
    IRON_CONDOR,
    LONG_PUT,
    PUT_BROKEN_WING_BUTTERFLY,
    PUT_CALENDAR,
    SPECS,
    WIDE_IRON_CONDOR,
    spec_of,
)
from strategies.structures.spec import (
    Candidate,
    SelectionParams,
    StructureSpec,
    back_month,
    buying_power,
    position_max_loss,
    select,
)

DAY = dt.date(2018, 3, 1)
FRONT = DAY + dt.timedelta(days=36)  # 2018-04-06
BACK = FRONT + dt.timedelta(days=28)  # 2018-05-04
TS = dt.datetime(2018, 3, 1, 10, 0)
SPOT = 250.0


def _n(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def bs_slice(expiry: dt.date, sigma: float = 0.15, spot: float = SPOT) -> ExpirySlice:
    """Strikes 200..300 step 1, Black-Scholes r = 0, bid/ask = mid -/+ 0.02, deep liquidity."""
    dte = (expiry - DAY).days
    tau = dte / 365.0
    k = np.arange(200.0, 301.0, 1.0)
    sd = sigma * math.sqrt(tau)
    d1 = np.log(spot / k) / sd + 0.5 * sd
    call = spot * _n(d1) - k * _n(d1 - sd) + 0.02
    put = k * _n(sd - d1) - spot * _n(-d1) + 0.02
    z = np.zeros(k.size)
    big = np.full(k.size, 1e4)
    iv = np.full(k.size, sigma)
    return ExpirySlice(expiry, dte, tau, k, call - 0.02, call + 0.02, iv, _n(d1), z, z, z, big, big,
                       put - 0.02, put + 0.02, iv, _n(d1) - 1.0, z, z, z, big, big)


def quote(strike: float, right: OptionRight, mid: float, expiry: dt.date = FRONT, delta: float = 0.0,
          iv: float = 0.15) -> OptionQuote:
    return OptionQuote(OptionContract("SPY", expiry, strike, right), mid - 0.01, mid + 0.01, mid, iv, delta, 0.0, 0.0,
                       0.0, 1e4, 1e4, TS)


def cand(spec: StructureSpec, *quotes: OptionQuote) -> Candidate:
    return Candidate(spec, FRONT, (FRONT - DAY).days, quotes)


P, C = OptionRight.PUT, OptionRight.CALL


def legs_of(c: Candidate, units: int) -> tuple[Leg, ...]:
    return tuple(Leg(leg.role, leg.contract, leg.side, leg.qty * units, leg.entry_price)
                 for leg in c.order_legs("SPY"))


# ------------------------------------------------------------------ hand-worked payoffs


def test_put_broken_wing_butterfly_hand_worked():
    # buy 255P 3.00, sell 2 x 250P 1.80, buy 240P 0.20 (240 skips 245): credit 2*1.80 - 3.00 - 0.20 = 0.40
    c = cand(PUT_BROKEN_WING_BUTTERFLY, quote(255, P, 3.00), quote(250, P, 1.80, delta=-0.30), quote(240, P, 0.20))
    assert c.credit_mid == pytest.approx(0.40)
    # above 255 every put expires worthless: keep the credit -> no risk on the upside
    assert payoff.payoff(*c._arrays(), credit=c.credit_mid, spot=300.0) == pytest.approx(0.40)
    # at the body: the 255 put is worth 5: 5 + 0.40
    assert c.max_profit == pytest.approx(5.40)
    # below 240: (255 - S) - 2 (250 - S) + (240 - S) + 0.40 = 255 - 500 + 240 + 0.40 = -4.60
    assert c.max_loss == pytest.approx(4.60)
    # between 240 and 245 the payoff is 0.40 - (245 - S): zero at 244.60; none above
    assert c.breakevens == pytest.approx((244.60,))
    assert c.max_wing == 10.0  # the broken wing
    assert c.risk_width == pytest.approx(5.0)  # far wing 10 - near wing 5
    assert c.credit_ratio == pytest.approx(0.40 / 5.0)
    assert c.breach_probability == pytest.approx(0.30)  # the body is one strike, counted once
    # Cboe: butterfly (paid) + a 5-wide credit spread net of the credit = 4.60 x 100 per unit
    assert buying_power(legs_of(c, 3), 3, c.credit_mid) == pytest.approx(4.60 * 100 * 3)
    assert position_max_loss(legs_of(c, 3), 3, c.credit_mid) == pytest.approx(4.60)


def test_call_broken_wing_butterfly_hand_worked():
    # buy 245C 6.00, sell 2 x 250C 3.20, buy 260C 0.10: credit 6.40 - 6.10 = 0.30
    c = cand(CALL_BROKEN_WING_BUTTERFLY, quote(245, C, 6.00), quote(250, C, 3.20, delta=0.45), quote(260, C, 0.10))
    assert c.credit_mid == pytest.approx(0.30)
    assert payoff.payoff(*c._arrays(), credit=0.30, spot=200.0) == pytest.approx(0.30)  # no risk below
    assert c.max_profit == pytest.approx(5.30)
    # above 260: (S - 245) - 2 (S - 250) + (S - 260) + 0.30 = -4.70
    assert c.max_loss == pytest.approx(4.70)
    # between 250 and 255: (S - 245) - 2 (S - 250) + 0.30 = 255.30 - S
    assert c.breakevens == pytest.approx((255.30,))
    assert buying_power(legs_of(c, 2), 2, 0.30) == pytest.approx(940.0)


def test_wide_iron_condor_hand_worked_and_unequal_wings_margin_on_the_wider_side():
    c = cand(WIDE_IRON_CONDOR, quote(240, P, 1.00, delta=-0.12), quote(230, P, 0.30), quote(265, C, 0.90, delta=0.11),
             quote(275, C, 0.20))
    assert c.credit_mid == pytest.approx(1.40)
    assert c.max_loss == pytest.approx(8.60)  # 10 - 1.40
    assert c.breakevens == pytest.approx((238.60, 266.40))
    assert c.credit_ratio == pytest.approx(0.14)
    assert buying_power(legs_of(c, 1), 1, 1.40) == pytest.approx(860.0)
    # a 5-wide put wing beside the 10-wide call wing: the wider side carries the requirement
    u = cand(WIDE_IRON_CONDOR, quote(240, P, 1.00), quote(235, P, 0.50), quote(265, C, 0.90), quote(275, C, 0.20))
    assert u.credit_mid == pytest.approx(1.20)
    assert u.max_loss == pytest.approx(10.0 - 1.20)
    assert buying_power(legs_of(u, 1), 1, 1.20) == pytest.approx(880.0)


def test_call_calendar_hand_worked():
    # sell the front 250C at 3.00, buy the back 250C (28 days later) at 4.50: a 1.50 debit
    c = cand(CALL_CALENDAR, quote(250, C, 3.00, FRONT, delta=0.52), quote(250, C, 4.50, BACK))
    assert c.credit_mid == pytest.approx(-1.50)
    assert c.back_expiry == BACK
    # the back month is worth at least the front month at one strike: the worst case is the debit
    assert c.max_loss == pytest.approx(1.50)
    assert math.isnan(c.credit_ratio)
    assert buying_power(legs_of(c, 4), 4, -1.50) == pytest.approx(600.0)  # paid in full: 1.50 x 100 x 4
    # at the front expiry with S = K the back call is worth K (2 N(sd / 2) - 1), sd = 0.15 sqrt(28/365):
    # sd = 0.0415454, N(0.0207727) = 0.5082866 -> 250 x 0.0165732 = 4.1433; P&L 4.1433 - 1.50 = 2.6433
    strikes, is_call, ratios = c._arrays()
    gap = np.array([0.0, 28 / 365])
    iv = np.array([0.15, 0.15])
    assert payoff.two_expiry_value(strikes, is_call, ratios, gap, iv, -1.50, 250.0) == pytest.approx(2.6433, abs=1e-4)
    lo, hi = c.breakevens
    assert lo < 250.0 < hi
    # below K the front call expires worthless: the back call alone is worth the debit
    sd = 0.15 * math.sqrt(28 / 365)
    for s in (lo, hi):
        d1 = math.log(s / 250.0) / sd + 0.5 * sd
        back = s * _n(np.array(d1)) - 250.0 * _n(np.array(d1 - sd))
        assert float(back) - max(s - 250.0, 0.0) - 1.50 == pytest.approx(0.0, abs=1e-8)
    legs = c.order_legs("SPY")
    assert [leg.contract.expiry for leg in legs] == [FRONT, BACK]
    assert [leg.side for leg in legs] == [Side.SHORT, Side.LONG]


def test_long_put_hand_worked():
    c = cand(LONG_PUT, quote(245, P, 2.10, delta=-0.30))
    assert c.credit_mid == pytest.approx(-2.10)
    assert c.max_loss == pytest.approx(2.10)
    assert c.breakevens == pytest.approx((242.90,))
    assert c.max_profit == pytest.approx(242.90)  # the underlying at zero
    assert c.breach_probability == 0.0
    assert buying_power(legs_of(c, 2), 2, -2.10) == pytest.approx(420.0)


def test_every_structure_has_a_spec_and_the_condor_is_unchanged():
    assert set(SPECS) == set(Structure)
    assert spec_of(Structure.IRON_CONDOR) is IRON_CONDOR
    assert IRON_CONDOR.wing_scale == 1.0 and IRON_CONDOR.wing_defined and not IRON_CONDOR.debit
    assert WIDE_IRON_CONDOR.legs == IRON_CONDOR.legs and WIDE_IRON_CONDOR.wing_scale == 2.0


# ------------------------------------------------------------------ selection on expiry slices

PARAMS = SelectionParams(target_delta=0.20, delta_low=0.10, delta_high=0.30, wing_min=5.0, wing_max=10.0)


def test_wide_condor_selects_wings_twice_the_configured_width():
    sl = bs_slice(FRONT)
    narrow, _ = select(IRON_CONDOR, sl, PARAMS, "SPY", TS)
    wide, why = select(WIDE_IRON_CONDOR, sl, PARAMS, "SPY", TS)
    assert narrow is not None and wide is not None, why
    assert narrow.quote(LegRole.SHORT_PUT).strike == wide.quote(LegRole.SHORT_PUT).strike
    assert wide.quote(LegRole.SHORT_PUT).strike - wide.quote(LegRole.LONG_PUT).strike == 10.0
    assert wide.quote(LegRole.LONG_CALL).strike - wide.quote(LegRole.SHORT_CALL).strike == 10.0
    assert narrow.quote(LegRole.SHORT_PUT).strike - narrow.quote(LegRole.LONG_PUT).strike == 5.0


def test_broken_wing_butterflies_skip_a_strike():
    sl = bs_slice(FRONT)
    put, why = select(PUT_BROKEN_WING_BUTTERFLY, sl, PARAMS, "SPY", TS)
    assert put is not None, why
    body = put.quote(LegRole.SHORT_PUT)
    assert abs(abs(body.delta) - 0.20) < 0.02
    assert put.quote(LegRole.LONG_PUT).strike == body.strike + 5.0
    assert put.quote(LegRole.LONG_PUT_FAR).strike == body.strike - 10.0
    assert put.order_legs("SPY")[1].qty == 2  # sell 2
    call, why = select(CALL_BROKEN_WING_BUTTERFLY, sl, PARAMS, "SPY", TS)
    assert call is not None, why
    body = call.quote(LegRole.SHORT_CALL)
    assert call.quote(LegRole.LONG_CALL).strike == body.strike - 5.0
    assert call.quote(LegRole.LONG_CALL_FAR).strike == body.strike + 10.0
    # generic numbers agree with the payoff at the kinks
    for c in (put, call):
        worst = min(payoff.payoff(*c._arrays(), credit=c.credit_mid, spot=float(k)) for k in (0.0, *c._arrays()[0]))
        assert c.max_loss == pytest.approx(max(-worst, 0.0))


def test_calendar_sells_front_atm_buys_back_month_same_strike():
    front, back = bs_slice(FRONT), bs_slice(BACK)
    expiries = [FRONT + dt.timedelta(days=d) for d in (0, 7, 28, 63)]
    assert back_month(CALL_CALENDAR, front, expiries) == BACK  # 21-42 days later, nearest 31.5
    assert back_month(CALL_CALENDAR, front, expiries[:2]) is None
    c, why = select(CALL_CALENDAR, front, PARAMS, "SPY", TS, back=back)
    assert c is not None, why
    # forward ATM with r = 0: call delta N(d1) nearest 0.5 is at 250 (d1 = sd / 2 > 0 there)
    assert c.quote(LegRole.SHORT_CALL).strike == 250.0
    assert c.quote(LegRole.LONG_CALL).strike == 250.0
    assert c.quote(LegRole.LONG_CALL).contract.expiry == BACK
    assert c.credit_mid < 0 and c.max_loss == pytest.approx(-c.credit_mid)
    p, _ = select(PUT_CALENDAR, front, PARAMS, "SPY", TS, back=back)
    assert p is not None and p.quote(LegRole.SHORT_PUT).strike == 250.0
    none, why = select(CALL_CALENDAR, front, PARAMS, "SPY", TS)
    assert none is None and "back-month" in why


def test_long_put_by_delta_and_pinned_strikes():
    sl = bs_slice(FRONT)
    c, _ = select(LONG_PUT, sl, SelectionParams(0.30, 0.20, 0.40, 5.0, 10.0), "SPY", TS)
    assert c is not None and abs(abs(c.quotes[0].delta) - 0.30) < 0.02
    # a breakout adjust pins the untested side: the put legs keep 240 / 235
    pinned, why = select(IRON_CONDOR, sl, PARAMS, "SPY", TS, fixed={LegRole.SHORT_PUT: 240.0, LegRole.LONG_PUT: 235.0})
    assert pinned is not None, why
    assert (pinned.quote(LegRole.SHORT_PUT).strike, pinned.quote(LegRole.LONG_PUT).strike) == (240.0, 235.0)
    assert abs(pinned.quote(LegRole.SHORT_CALL).delta - 0.20) < 0.02
