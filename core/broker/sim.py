"""Simulated options venue: per-leg fills, fees, buying power, marks, expiry, assignment, delivery.

Money: option prices per share; cash in dollars (``x 100`` per contract).  Every cash
movement is a ``LedgerEntry`` so ``cash == start_cash + sum(ledger amounts)`` always holds.

Fill models (one-method objects, zipline style): ``mid`` — every leg at mid; ``fraction`` —
mid moved against us by ``fraction`` x half-spread (default 0.5); ``cross`` — sell at the
bid, buy at the ask.

Buying power held for a defined-risk structure = worst payoff at expiry x 100 x units
(``strategies.structures.spec.buying_power``; widest wing - credit for a condor); an entry
that needs more than the free buying power (cash - held) is rejected, as is one whose loss is
unbounded.

The venue sees the market the driver hands it each bar (``set_market``: time, open, close,
the chain and the marks of open positions) and does on its own what an exchange and a
clearing firm do: expiring positions settle at intrinsic against the closing price on
their expiry day; in-the-money legs are exercised / assigned and the delivered shares are
sold at the next session's open (or the same close); a short call whose extrinsic value is
below the next day's dividend is assigned early at the close before the ex-dividend date.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from core.broker.protocol import ClosedTrade, OrderRequest, OrderResult, OrderStatus, VenueEvent
from core.config import BacktestConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    BrokerError,
    ChainView,
    ExitReason,
    FillModelKind,
    LedgerKind,
    Leg,
    LegMarks,
    OptionRight,
    OrderIntent,
    Position,
    ReasonCode,
    Side,
)
from strategies.structures.spec import position_max_loss


@dataclass(frozen=True, slots=True)
class FillModel:
    kind: FillModelKind = FillModelKind.FRACTION
    fraction: float = 0.5

    def price(self, bid: float, ask: float, side: Side, opening: bool) -> float:
        """Fill price of one leg; ``side`` is the leg's side in the position."""
        buying = (side is Side.LONG) == opening
        mid = 0.5 * (bid + ask)
        half = 0.5 * (ask - bid)
        if self.kind is FillModelKind.MID:
            px = mid
        elif self.kind is FillModelKind.CROSS:
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
    kind: LedgerKind
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


@dataclass(slots=True)
class _Delivery:
    position_id: str
    shares: float
    price: float


class SimBroker:
    """Cash, open positions, a ledger and the venue's own events; it never decides."""

    def __init__(self, cash: float, fill: FillModel, fees: FeeModel, flatten_delivery_same_close: bool = False
                 ) -> None:
        self.start_cash = float(cash)
        self.cash = float(cash)
        self.fill = fill
        self.fee_model = fees
        self.same_close = flatten_delivery_same_close
        self.positions: dict[str, OpenPosition] = {}
        self.ledger: list[LedgerEntry] = []
        self.closed: list[ClosedTrade] = []
        self.shares = 0.0  # stock from assignment and hedging
        self.hedge_shares = 0.0
        self._pending: list[_Delivery] = []
        self._closed_index: dict[str, int] = {}
        self.ts = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        self.open_price = math.nan
        self.spot = math.nan
        self.chain: ChainView | None = None
        self.marks: Mapping[str, LegMarks] = {}

    @classmethod
    def from_config(cls, bt: BacktestConfig) -> SimBroker:
        return cls(bt.cash, FillModel(bt.fill_model, bt.fill_fraction),
                   FeeModel(bt.commission_per_contract, bt.reg_fee_per_contract),
                   flatten_delivery_same_close=bt.assignment_close == "same_close")

    # -- market the venue sees ----------------------------------------------------------
    def set_market(self, ts: dt.datetime, open_price: float, spot: float, chain: ChainView | None,
                   marks: Mapping[str, LegMarks]) -> None:
        self.ts, self.open_price, self.spot, self.chain, self.marks = ts, open_price, spot, chain, marks

    # -- bookkeeping -------------------------------------------------------------------
    def _book(self, kind: LedgerKind, pid: str, amount: float, note: str) -> None:
        amount = round(amount, 6)
        self.cash += amount
        self.ledger.append(LedgerEntry(self.ts, kind, pid, amount, note))

    @property
    def reserved(self) -> float:
        return sum(p.reserved for p in self.positions.values())

    @property
    def free_buying_power(self) -> float:
        return self.cash - self.reserved

    def open_positions(self) -> Mapping[str, Position]:
        return {pid: op.position for pid, op in self.positions.items()}

    # -- orders ------------------------------------------------------------------------
    def submit(self, order: OrderRequest) -> OrderResult:
        try:
            if order.intent is OrderIntent.OPEN:
                op = self._open(order)
                return OrderResult(order, OrderStatus.FILLED, self.ts, position=op.position)
            mk = self.marks[order.position_id]
            trade = self.close(order.position_id, mk.bid, mk.ask, order.exit_reason or ExitReason.END_OF_DATA)
            return OrderResult(order, OrderStatus.FILLED, self.ts, trade=trade)
        except BrokerError as exc:
            return OrderResult(order, OrderStatus.REJECTED, self.ts, text=str(exc))

    def _leg_quote(self, pid: str, leg: Leg) -> tuple[float, float]:
        if self.chain is None:
            raise BrokerError(f"order {pid}: no market for {leg.contract.occ_symbol}")
        q = self.chain.expiry_slice(leg.contract.expiry).quote(leg.contract.strike, leg.contract.right,
                                                               leg.contract.underlying, self.ts)
        if q is None:
            raise BrokerError(f"order {pid}: {leg.contract.occ_symbol} is not listed")
        return q.bid, q.ask

    def _open(self, order: OrderRequest) -> OpenPosition:
        pid, qty = order.client_order_id, order.qty
        if qty <= 0:
            raise BrokerError(f"order {pid}: quantity must be positive, got {qty}")
        if order.structure is None or not order.legs:
            raise BrokerError(f"order {pid}: an opening order needs a structure and legs")
        filled: list[Leg] = []
        credit = 0.0
        for leg in order.legs:
            bid, ask = self._leg_quote(pid, leg)
            if not (0 <= bid <= ask):
                raise BrokerError(f"order {pid}: crossed or negative quote on {leg.contract.occ_symbol}")
            px = self.fill.price(bid, ask, leg.side, opening=True)
            credit -= leg.side.sign * px * leg.qty
            filled.append(Leg(leg.role, leg.contract, leg.side, leg.qty * qty, px))
        credit = round(credit, 4)
        if order.limit is not None and credit < order.limit - 1e-9:
            raise BrokerError(f"order {pid}: fill credit {credit:.4f} worse than limit {order.limit:.4f}")
        max_loss = position_max_loss(tuple(filled), qty, credit)
        if not math.isfinite(max_loss):
            raise BrokerError(f"order {pid}: undefined risk (unbounded loss) is not accepted")
        reserved = max_loss * CONTRACT_MULTIPLIER * qty
        fees = self.fee_model.fees(sum(leg.qty for leg in filled))
        if reserved + fees > self.free_buying_power + credit * CONTRACT_MULTIPLIER * qty + 1e-9:
            raise BrokerError(
                f"order {pid}: needs ${reserved:,.2f} buying power, ${self.free_buying_power:,.2f} free")
        position = Position(pid, order.structure, tuple(filled), qty, self.ts, credit, max_loss, fees)
        op = OpenPosition(position, reserved, dict(order.tag), fees=fees)
        op.realised = credit * CONTRACT_MULTIPLIER * qty
        self._book(LedgerKind.OPEN, pid, op.realised, f"{order.structure.value} x{qty} credit {credit:.4f}")
        self._book(LedgerKind.FEE, pid, -fees, f"{sum(leg.qty for leg in filled)} contracts")
        self.positions[pid] = op
        return op

    def close(self, pid: str, bids: np.ndarray, asks: np.ndarray, reason: ExitReason) -> ClosedTrade:
        """Close every leg at the fill model's price against the given quotes."""
        op = self.positions.pop(pid)
        prices = tuple(self.fill.price(float(b), float(a), leg.side, opening=False)
                       for leg, b, a in zip(op.position.legs, bids, asks, strict=True))
        return self._finish(op, prices, reason, charge_fees=True)

    def _settle(self, pid: str, spot: float) -> ClosedTrade:
        """Expiry: every leg settles at intrinsic against the same closing price."""
        op = self.positions.pop(pid)
        prices = tuple(_intrinsic(leg, spot) for leg in op.position.legs)
        return self._finish(op, prices, ExitReason.EXPIRY, charge_fees=False)

    def _finish(self, op: OpenPosition, prices: tuple[float, ...], reason: ExitReason,
                charge_fees: bool) -> ClosedTrade:
        pid = op.pid
        # cash of the closing trades: long legs sold (+), short legs bought back (-)
        cash_flow = sum(leg.side.sign * px * leg.qty for leg, px in zip(op.position.legs, prices, strict=True))
        cash_flow *= CONTRACT_MULTIPLIER
        self._book(LedgerKind.CLOSE if charge_fees else LedgerKind.SETTLE, pid, cash_flow, reason.value)
        fees = 0.0
        if charge_fees:
            fees = self.fee_model.fees(sum(leg.qty for leg in op.position.legs))
            self._book(LedgerKind.FEE, pid, -fees, "close")
        total_fees = op.fees + fees
        pnl = op.realised + cash_flow - total_fees
        exit_debit = round(-cash_flow / (CONTRACT_MULTIPLIER * op.position.qty), 6)
        trade = ClosedTrade(op.position, self.ts, prices, exit_debit, round(total_fees, 6), round(pnl, 6), reason,
                            op.entry_extra)
        self._closed_index[pid] = len(self.closed)
        self.closed.append(trade)
        return trade

    # -- stock (assignment delivery, hedges) -------------------------------------------
    def trade_shares(self, qty: float, purpose: str, price: float | None = None) -> None:
        """Buy (+) or sell (-) shares at ``price`` (default: the bar's close); no commission on
        stock.  ``purpose`` 'hedge' moves the hedge position."""
        if qty == 0:
            return
        px = self.spot if price is None else price
        self._book(LedgerKind.SHARES, "stock", -qty * px, f"{purpose}: {qty:+.0f} @ {px:.4f}")
        self.shares += qty
        if purpose == "delta hedge":
            self.hedge_shares += qty

    def _deliver(self, pid: str, shares: float, spot: float) -> None:
        if shares == 0:
            return
        self.trade_shares(shares, "assignment delivery at close", spot)
        if self.same_close:
            self.trade_shares(-shares, "flatten at close", spot)
        else:
            self._pending.append(_Delivery(pid, shares, spot))

    # -- venue events ------------------------------------------------------------------
    def start_session(self) -> list[VenueEvent]:
        """At the session's first bar: sell delivered shares at the open, P&L to their position."""
        events = []
        total = sum(d.shares for d in self._pending)
        if total:
            self.trade_shares(-total, "flatten assigned shares", self.open_price)
            events.append(VenueEvent(self.ts, ReasonCode.DELIVERY_FLATTEN, "stock",
                                     f"closed {total:+.0f} assigned shares at open {self.open_price:.2f}"))
        for d in self._pending:
            k = self._closed_index.get(d.position_id)
            if k is not None:
                t = self.closed[k]
                self.closed[k] = replace(t, share_pnl=round(t.share_pnl + d.shares * (self.open_price - d.price), 6))
        self._pending = []
        return events

    def end_session(self, next_ex_dividend: float | None) -> list[VenueEvent]:
        """At the session's last bar: settle what expires today; early assignment before ex-dividend."""
        events = []
        today = self.ts.date()
        spot = self.spot
        for pid in list(self.positions):
            position = self.positions[pid].position
            if position.front_expiry <= today:
                shares = assignment_shares(position, spot)
                trade = self._settle(pid, spot)
                self._deliver(pid, shares, spot)
                events.append(VenueEvent(self.ts, ReasonCode.EXPIRY_SETTLEMENT, pid,
                                         f"expiry settled at {spot:.2f}; pnl {trade.pnl:+.2f}", trade))
            elif next_ex_dividend is not None:
                event = self._early_assignment(pid, next_ex_dividend)
                if event is not None:
                    events.append(event)
        return events

    def _early_assignment(self, pid: str, dividend: float) -> VenueEvent | None:
        op = self.positions[pid]
        mk = self.marks[pid]
        spot = self.spot
        for j, leg in enumerate(op.position.legs):
            if leg.side is Side.SHORT and leg.contract.right is OptionRight.CALL and spot > leg.contract.strike:
                extrinsic = float(mk.mid[j]) - (spot - leg.contract.strike)
                if extrinsic < dividend:
                    shares = -CONTRACT_MULTIPLIER * leg.qty
                    bids, asks = mk.bid.copy(), mk.ask.copy()
                    bids[j] = asks[j] = spot - leg.contract.strike  # assigned at intrinsic
                    trade = self.close(pid, bids, asks, ExitReason.ASSIGNMENT)
                    self._deliver(pid, shares, spot)
                    return VenueEvent(self.ts, ReasonCode.ASSIGNMENT, pid,
                                      f"short call {leg.contract.strike:g} assigned before ex-dividend (extrinsic "
                                      f"{extrinsic:.3f} < dividend {dividend:.3f}); pnl {trade.pnl:+.2f}", trade)
        return None


def assignment_shares(position: Position, spot: float) -> float:
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


def _intrinsic(leg: Leg, spot: float) -> float:
    k = leg.contract.strike
    return max(spot - k, 0.0) if leg.contract.right is OptionRight.CALL else max(k - spot, 0.0)
