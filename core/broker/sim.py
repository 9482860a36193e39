"""Simulated options broker: per-leg fills, fees, buying power, marks, expiry and assignment.

Money: option prices per share; cash in dollars (``x 100`` per contract).  Every cash
movement is a ``LedgerEntry`` so ``cash == start_cash + sum(ledger amounts)`` always holds.

Fill models (one-method objects, zipline style):

* ``mid``       — every leg at mid;
* ``fraction``  — mid moved against us by ``fraction`` x half-spread (default 0.5);
* ``cross``     — sell at the bid, buy at the ask.

Buying power held for a defined-risk condor = (widest wing - credit) x 100 x contracts; an
entry that needs more than the free buying power (cash - held) is rejected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from core.dto import CONTRACT_MULTIPLIER, BrokerError, ExitReason, Leg, OptionRight, Position, Side


@dataclass(frozen=True, slots=True)
class FillModel:
    kind: str = "fraction"  # mid | fraction | cross
    fraction: float = 0.5

    def price(self, bid: float, ask: float, side: Side, opening: bool) -> float:
        """Fill price of one leg; ``side`` is the leg's side in the position."""
        buying = (side is Side.LONG) == opening
        mid = 0.5 * (bid + ask)
        half = 0.5 * (ask - bid)
        if self.kind == "mid":
            px = mid
        elif self.kind == "cross":
            px = ask if buying else bid
        else:
            px = mid + self.fraction * half if buying else mid - self.fraction * half
        return max(round(px, 4), 0.0)


@dataclass(frozen=True, slots=True)
class FeeModel:
    commission_per_contract: float = 0.65
    reg_fee_per_contract: float = 0.03

    def fees(self, contracts: int) -> float:
        return round(contracts * (self.commission_per_contract + self.reg_fee_per_contract), 4)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    ts: dt.datetime
    kind: str  # open | close | fee | settle | assign | shares
    position_id: str
    amount: float
    note: str


@dataclass(slots=True)
class OpenPosition:
    position: Position
    reserved: float  # buying power held, dollars
    entry_extra: dict[str, object] = field(default_factory=dict)
    fees: float = 0.0
    realised: float = 0.0  # premium + settlement cash flows excluding fees

    @property
    def pid(self) -> str:
        return self.position.position_id


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    position: Position
    exit_time: dt.datetime
    exit_prices: tuple[float, ...]  # per leg, per share, in leg order
    exit_debit: float  # per share paid to close (negative = received)
    fees: float  # entry + exit fees, dollars
    pnl: float  # dollars, after fees
    exit_reason: ExitReason
    entry_extra: dict[str, object]


class SimBroker:
    """Cash, open positions and a ledger; the engine calls it, it never decides."""

    def __init__(self, cash: float, fill: FillModel, fees: FeeModel) -> None:
        self.start_cash = float(cash)
        self.cash = float(cash)
        self.fill = fill
        self.fee_model = fees
        self.positions: dict[str, OpenPosition] = {}
        self.ledger: list[LedgerEntry] = []
        self.closed: list[ClosedTrade] = []
        self.shares = 0.0  # stock from assignment / hedging
        self.share_cost = 0.0

    # -- bookkeeping -------------------------------------------------------------------
    def _book(self, ts: dt.datetime, kind: str, pid: str, amount: float, note: str) -> None:
        amount = round(amount, 6)
        self.cash += amount
        self.ledger.append(LedgerEntry(ts, kind, pid, amount, note))

    @property
    def reserved(self) -> float:
        return sum(p.reserved for p in self.positions.values())

    @property
    def free_buying_power(self) -> float:
        return self.cash - self.reserved

    # -- orders ------------------------------------------------------------------------
    def open(
        self,
        ts: dt.datetime,
        pid: str,
        structure: str,
        legs: list[tuple[Leg, float, float]],
        qty: int,
        max_wing: float,
        extra: dict[str, object] | None = None,
    ) -> OpenPosition:
        """Open ``qty`` units of a structure; ``legs`` holds (leg template, bid, ask) each."""
        if qty <= 0:
            raise BrokerError(f"order {pid}: quantity must be positive, got {qty}")
        filled: list[Leg] = []
        credit = 0.0
        for leg, bid, ask in legs:
            if not (0 <= bid <= ask):
                raise BrokerError(f"order {pid}: crossed or negative quote on {leg.contract.occ_symbol}")
            px = self.fill.price(bid, ask, leg.side, opening=True)
            credit -= leg.side.sign * px * leg.qty
            filled.append(Leg(leg.name, leg.contract, leg.side, leg.qty * qty, px))
        credit = round(credit, 4)
        max_loss = max(max_wing - credit, 0.0)
        reserved = max_loss * CONTRACT_MULTIPLIER * qty
        fees = self.fee_model.fees(sum(leg.qty for leg in filled))
        if reserved + fees > self.free_buying_power + credit * CONTRACT_MULTIPLIER * qty + 1e-9:
            raise BrokerError(
                f"order {pid}: needs ${reserved:,.2f} buying power, ${self.free_buying_power:,.2f} free")
        position = Position(pid, structure, tuple(filled), qty, ts, credit, max_loss, fees)
        op = OpenPosition(position, reserved, dict(extra or {}), fees=fees)
        op.realised = credit * CONTRACT_MULTIPLIER * qty
        self._book(ts, "open", pid, op.realised, f"{structure} x{qty} credit {credit:.4f}")
        self._book(ts, "fee", pid, -fees, f"{sum(leg.qty for leg in filled)} contracts")
        self.positions[pid] = op
        return op

    def close(self, ts: dt.datetime, pid: str, bids: np.ndarray, asks: np.ndarray,
              reason: ExitReason) -> ClosedTrade:
        """Close every leg at the fill model's price against the given quotes."""
        op = self.positions.pop(pid)
        prices = tuple(self.fill.price(float(b), float(a), leg.side, opening=False)
                       for leg, b, a in zip(op.position.legs, bids, asks, strict=True))
        return self._finish(ts, op, prices, reason, charge_fees=True)

    def settle(self, ts: dt.datetime, pid: str, spot: float, reason: ExitReason = ExitReason.EXPIRY) -> ClosedTrade:
        """Expiry: every leg settles at intrinsic against the same closing price.

        In-the-money legs are exercised / assigned: the share delivery nets to a cash flow of
        intrinsic value at ``spot``; ``net_shares`` of the delivery are recorded so the engine
        can flatten them at the next open when configured.
        """
        op = self.positions.pop(pid)
        prices = tuple(_intrinsic(leg, spot) for leg in op.position.legs)
        return self._finish(ts, op, prices, reason, charge_fees=False)

    def assignment_shares(self, position: Position, spot: float) -> float:
        """Net shares delivered if the position's in-the-money legs are exercised/assigned."""
        shares = 0.0
        for leg in position.legs:
            if _intrinsic(leg, spot) <= 0:
                continue
            per = CONTRACT_MULTIPLIER * leg.qty
            is_call = leg.contract.right is OptionRight.CALL
            # long call / short put receive shares; short call / long put deliver them
            receives = (is_call and leg.side is Side.LONG) or (not is_call and leg.side is Side.SHORT)
            shares += per if receives else -per
        return shares

    def _finish(self, ts: dt.datetime, op: OpenPosition, prices: tuple[float, ...], reason: ExitReason,
                charge_fees: bool) -> ClosedTrade:
        pid = op.pid
        # cash of the closing trades: long legs sold (+), short legs bought back (-)
        cash_flow = sum(leg.side.sign * px * leg.qty for leg, px in zip(op.position.legs, prices, strict=True))
        cash_flow *= CONTRACT_MULTIPLIER
        self._book(ts, "close" if charge_fees else "settle", pid, cash_flow, reason.value)
        fees = 0.0
        if charge_fees:
            fees = self.fee_model.fees(sum(leg.qty for leg in op.position.legs))
            self._book(ts, "fee", pid, -fees, "close")
        total_fees = op.fees + fees
        pnl = op.realised + cash_flow - total_fees
        exit_debit = round(-cash_flow / (CONTRACT_MULTIPLIER * op.position.qty), 6)
        trade = ClosedTrade(op.position, ts, prices, exit_debit, round(total_fees, 6), round(pnl, 6), reason,
                            op.entry_extra)
        self.closed.append(trade)
        return trade

    # -- stock (assignment delivery, hedges) -------------------------------------------
    def trade_shares(self, ts: dt.datetime, qty: float, price: float, note: str) -> None:
        """Buy (+) or sell (-) shares at ``price``; no commission on stock."""
        if qty == 0:
            return
        self._book(ts, "shares", "stock", -qty * price, f"{note}: {qty:+.0f} @ {price:.4f}")
        self.shares += qty

    # -- valuation ---------------------------------------------------------------------
    def positions_value(self, marks: dict[str, np.ndarray]) -> float:
        """Value of open option positions at mid marks (short legs count negative)."""
        total = 0.0
        for pid, op in self.positions.items():
            mids = marks[pid]
            for leg, mid in zip(op.position.legs, mids, strict=True):
                total += leg.side.sign * float(mid) * leg.qty * CONTRACT_MULTIPLIER
        return total


def _intrinsic(leg: Leg, spot: float) -> float:
    k = leg.contract.strike
    return max(spot - k, 0.0) if leg.contract.right is OptionRight.CALL else max(k - spot, 0.0)
