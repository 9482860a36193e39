"""Daily drawdown stop as a pure decision (SPEC §6).

The stop trips when ``(E_sod − E) / E_sod >= max_daily_drawdown`` on marked equity and stays
tripped for the rest of the session (the driver latches it in the book as ``halted`` once
the core has said HALT).  With ``flatten_on_drawdown`` the trip closes every position once,
on the bar where it trips.

>>> check_drawdown(25_000.0, 24_400.0, halted=False, limit=0.02, flatten=True)
DrawdownState(drawdown=0.024, tripped=True, trips_now=True, flatten_now=True)
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class DrawdownState:
    drawdown: float  # (E_sod - E) / E_sod, negative on an up day
    tripped: bool  # the stop is active on this bar
    trips_now: bool  # it trips on this bar (it was not active before)
    flatten_now: bool  # close every position on this bar


def check_drawdown(start_of_day_equity: float, equity: float, halted: bool, limit: float,
                   flatten: bool) -> DrawdownState:
    dd = (start_of_day_equity - equity) / start_of_day_equity
    trips_now = not halted and dd >= limit - _EPS
    return DrawdownState(dd, halted or trips_now, trips_now, trips_now and flatten)
