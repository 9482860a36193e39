"""The broker interface every venue implements: the simulated venue here, Alpaca later.

A driver turns the core's decisions into ``OrderRequest``s for a structure (legs per unit,
quantity, optional limit) or share orders, and reads fills, positions, cash, buying power
and venue events (expiry settlement, assignment, delivery) back.  Nobody passes quotes or
"max wing" in: the venue prices fills from its own market and holds buying power by its own
model (defined-risk structures: the worst payoff at expiry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, unique
from typing import Protocol

from core.dto import ExitReason, Leg, OrderIntent, Position, ReasonCode, Structure


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A multi-leg order: ``legs`` are one unit (leg qty = ratio), ``qty`` units.

    OPEN needs ``legs``; CLOSE names the ``position_id`` to close.  ``limit`` is the net
    credit per share of one unit the order accepts (None = marketable at the venue's fill
    model)."""

    client_order_id: str
    intent: OrderIntent
    structure: Structure | None
    qty: int
    legs: tuple[Leg, ...] = ()
    position_id: str = ""
    limit: float | None = None
    exit_reason: ExitReason | None = None
    tag: Mapping[str, object] = field(default_factory=dict)


@unique
class OrderStatus(Enum):
    FILLED = "filled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    position: Position
    exit_time: dt.datetime
    exit_prices: tuple[float, ...]  # per leg, per share, in leg order
    exit_debit: float  # per share paid to close (negative = received)
    fees: float  # entry + exit fees, dollars
    pnl: float  # option P&L in dollars, after fees
    exit_reason: ExitReason
    entry_extra: Mapping[str, object]
    share_pnl: float = 0.0  # P&L of shares delivered by this position's assignment, flattened later

    @property
    def total_pnl(self) -> float:
        return round(self.pnl + self.share_pnl, 6)


@dataclass(frozen=True, slots=True)
class OrderResult:
    order: OrderRequest
    status: OrderStatus
    ts: dt.datetime
    text: str = ""
    position: Position | None = None  # opened position (OPEN)
    trade: ClosedTrade | None = None  # closed trade (CLOSE)


@dataclass(frozen=True, slots=True)
class VenueEvent:
    """Something the venue did on its own: expiry settlement, assignment, delivery flatten."""

    ts: dt.datetime
    code: ReasonCode
    position_id: str
    text: str
    trade: ClosedTrade | None = None


class Broker(Protocol):
    """What a driver needs from a venue (simulated or Alpaca)."""

    @property
    def cash(self) -> float: ...

    @property
    def reserved(self) -> float: ...

    @property
    def free_buying_power(self) -> float: ...

    def open_positions(self) -> Mapping[str, Position]: ...

    def submit(self, order: OrderRequest) -> OrderResult: ...

    def trade_shares(self, qty: float, purpose: str) -> None: ...

    def start_session(self) -> list[VenueEvent]: ...

    def end_session(self, next_ex_dividend: float | None) -> list[VenueEvent]: ...
