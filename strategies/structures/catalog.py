"""The structures the core knows, each only a spec (see ``spec.py``).

    iron condor          short put + long put below it, short call + long call above it
    wide iron condor     the same legs, wings twice as wide (HIGH_VOL_RANGE)
    put credit spread    short put + long put below it (bullish / neutral)
    call credit spread   short call + long call above it (bearish / neutral)
    call / put calendar  sell the front-month ATM option, buy the back-month ATM option
                         (same strike and right, back month 21-42 days after the front); a debit
    put broken-wing      bullish, for a credit: buy 1 put a wing above, sell 2 puts at the
    butterfly            target delta, buy 1 put two wings below (one strike skipped); no risk
                         above, max loss = far wing - near wing - credit below
    call broken-wing     bearish mirror with calls: no risk below
    butterfly
    long put             one put at the target delta, for a debit (the CRASH_MODE hedge)
"""

from __future__ import annotations

from core.dto import LegRole, OptionRight, Side, Structure
from strategies.structures.spec import Atm, ByDelta, LegSpec, SameStrikeAs, SkipOf, StructureSpec, WingOf

_CONDOR_LEGS = (
    LegSpec(LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT, ByDelta()),
    LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, WingOf(LegRole.SHORT_PUT, -1)),
    LegSpec(LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT, ByDelta()),
    LegSpec(LegRole.LONG_CALL, OptionRight.CALL, Side.LONG, WingOf(LegRole.SHORT_CALL, +1)),
)

IRON_CONDOR = StructureSpec(Structure.IRON_CONDOR, "condor", _CONDOR_LEGS,
                            below=((LegRole.SHORT_PUT, LegRole.SHORT_CALL),))

WIDE_IRON_CONDOR = StructureSpec(Structure.WIDE_IRON_CONDOR, "wide condor", _CONDOR_LEGS,
                                 below=((LegRole.SHORT_PUT, LegRole.SHORT_CALL),), wing_scale=2.0)

PUT_CREDIT_SPREAD = StructureSpec(
    Structure.PUT_CREDIT_SPREAD, "put spread",
    (LegSpec(LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT, ByDelta()),
     LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, WingOf(LegRole.SHORT_PUT, -1))),
)

CALL_CREDIT_SPREAD = StructureSpec(
    Structure.CALL_CREDIT_SPREAD, "call spread",
    (LegSpec(LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT, ByDelta()),
     LegSpec(LegRole.LONG_CALL, OptionRight.CALL, Side.LONG, WingOf(LegRole.SHORT_CALL, +1))),
)

CALL_CALENDAR = StructureSpec(
    Structure.CALL_CALENDAR, "call calendar",
    (LegSpec(LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT, Atm()),
     LegSpec(LegRole.LONG_CALL, OptionRight.CALL, Side.LONG, SameStrikeAs(LegRole.SHORT_CALL), expiry_slot=1)),
    debit=True,
)

PUT_CALENDAR = StructureSpec(
    Structure.PUT_CALENDAR, "put calendar",
    (LegSpec(LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT, Atm()),
     LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, SameStrikeAs(LegRole.SHORT_PUT), expiry_slot=1)),
    debit=True,
)

PUT_BROKEN_WING_BUTTERFLY = StructureSpec(
    Structure.PUT_BROKEN_WING_BUTTERFLY, "put BWB",
    (LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, WingOf(LegRole.SHORT_PUT, +1)),
     LegSpec(LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT, ByDelta(), ratio=2),
     LegSpec(LegRole.LONG_PUT_FAR, OptionRight.PUT, Side.LONG, SkipOf(LegRole.SHORT_PUT, LegRole.LONG_PUT, -1))),
)

CALL_BROKEN_WING_BUTTERFLY = StructureSpec(
    Structure.CALL_BROKEN_WING_BUTTERFLY, "call BWB",
    (LegSpec(LegRole.LONG_CALL, OptionRight.CALL, Side.LONG, WingOf(LegRole.SHORT_CALL, -1)),
     LegSpec(LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT, ByDelta(), ratio=2),
     LegSpec(LegRole.LONG_CALL_FAR, OptionRight.CALL, Side.LONG,
             SkipOf(LegRole.SHORT_CALL, LegRole.LONG_CALL, +1))),
)

LONG_PUT = StructureSpec(
    Structure.LONG_PUT, "long put",
    (LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, ByDelta()),),
    debit=True,
)

SPECS: dict[Structure, StructureSpec] = {s.kind: s for s in (
    IRON_CONDOR, WIDE_IRON_CONDOR, PUT_CREDIT_SPREAD, CALL_CREDIT_SPREAD, CALL_CALENDAR, PUT_CALENDAR,
    PUT_BROKEN_WING_BUTTERFLY, CALL_BROKEN_WING_BUTTERFLY, LONG_PUT)}


def spec_of(kind: Structure) -> StructureSpec:
    return SPECS[kind]
