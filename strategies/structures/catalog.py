"""The structures the core knows, each only a spec (see ``spec.py``).

    iron condor        short put + long put below it, short call + long call above it
    put credit spread  short put + long put below it (bullish / neutral)
    call credit spread short call + long call above it (bearish / neutral)
"""

from __future__ import annotations

from core.dto import LegRole, OptionRight, Side, Structure
from strategies.structures.spec import ByDelta, LegSpec, StructureSpec, WingOf

IRON_CONDOR = StructureSpec(
    Structure.IRON_CONDOR, "condor",
    (LegSpec(LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT, ByDelta()),
     LegSpec(LegRole.LONG_PUT, OptionRight.PUT, Side.LONG, WingOf(LegRole.SHORT_PUT, -1)),
     LegSpec(LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT, ByDelta()),
     LegSpec(LegRole.LONG_CALL, OptionRight.CALL, Side.LONG, WingOf(LegRole.SHORT_CALL, +1))),
    below=((LegRole.SHORT_PUT, LegRole.SHORT_CALL),),
)

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

SPECS: dict[Structure, StructureSpec] = {s.kind: s for s in (IRON_CONDOR, PUT_CREDIT_SPREAD, CALL_CREDIT_SPREAD)}


def spec_of(kind: Structure) -> StructureSpec:
    return SPECS[kind]
