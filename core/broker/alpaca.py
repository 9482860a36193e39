"""The Alpaca venue: the ``Broker`` protocol over alpaca-py's ``TradingClient``.

One structure = one multi-leg (``mleg``) limit order.  The limit starts at the combo's mid
less ``edge`` and walks toward the natural price (sell at the bid, buy at the ask) in ``step``
increments, at most ``max_steps`` orders; each step waits ``wait_s`` for a fill, then is
canceled (and read back: a cancel can race a fill).  A limit never goes beyond the natural
price nor below the decision's own limit.

Idempotency: the order of step *k* of a decision has the deterministic id
``<decision id>-<k>``, written to the journal (the ledger) *before* the POST.  A POST whose
outcome is unknown -- timeout, connection drop, 5xx, 429, or 422 "client_order_id must be
unique" -- is never re-sent blindly: the order is looked up by its client id first; only a
404 there means it never reached Alpaca (and the same id is used again).  A step whose id the
journal already knows (a restart) is resumed from the broker, never re-sent.

Prices: the core's convention (credit positive per share of one unit); Alpaca's mleg
``limit_price`` is negative for a net credit.  Fill prices are read back from the legs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from core.broker.alpaca_http import Failure, RetryPolicy, call_read, classify, error_text
from core.broker.protocol import ClosedTrade, OrderRequest, OrderResult, OrderStatus, VenueEvent
from core.dto import (
    CONTRACT_MULTIPLIER,
    BrokerError,
    ExitReason,
    Leg,
    LegRole,
    OptionContract,
    OptionRight,
    OrderIntent,
    Position,
    ReasonCode,
    Side,
    Structure,
)
from strategies.structures.spec import position_max_loss

UTC = dt.UTC
FINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"})


@dataclass(frozen=True)
class WalkParams:
    edge: float = 0.05  # start at mid less this (per share of one unit)
    step: float = 0.05  # walk toward natural by this per step
    max_steps: int = 4
    wait_s: float = 20.0  # per step
    poll_s: float = 1.0
    fee_per_contract: float = 0.0  # Alpaca charges no options commission; regulatory fees pass through


class Journal(Protocol):
    """Where every order is written before anything acts on it (``core.live.ledger.Ledger``)."""

    def order_planned(self, cid: str, decision_id: str, step: int, intent: str, qty: int, limit_credit: float,
                      body: Mapping[str, Any]) -> None: ...

    def order_update(self, cid: str, broker_id: str | None, status: str, filled_qty: int,
                     avg_credit: float | None, text: str = "") -> None: ...

    def order_status(self, cid: str) -> str | None: ...

    def position_opened(self, position: Position, cid: str) -> None: ...

    def position_closed(self, trade: ClosedTrade, cid: str) -> None: ...

    def position_reduced(self, position: Position) -> None: ...

    def event(self, kind: str, text: str) -> None: ...

    def orders(self, decision_id: str | None = None) -> list[dict[str, Any]]: ...


class OrderWatch:
    """Order updates from the trade-update stream wake a waiting submit (else it polls)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.latest: dict[str, dict[str, Any]] = {}

    def push(self, order: Mapping[str, Any]) -> None:
        with self.cond:
            self.latest[str(order.get("client_order_id"))] = dict(order)
            self.cond.notify_all()

    def wait(self, cid: str, timeout: float) -> dict[str, Any] | None:
        with self.cond:
            self.cond.wait_for(lambda: str(self.latest.get(cid, {}).get("status", "")) in FINAL_STATUSES, timeout)
            return self.latest.get(cid)


def _val(x: Any) -> str:
    v = getattr(x, "value", x)
    return "" if v is None else str(v)


def order_dict(order: Any) -> dict[str, Any]:
    """An alpaca-py ``Order`` (or a raw dict) as plain values."""
    if isinstance(order, Mapping):
        d = dict(order)
        d["legs"] = [dict(leg) for leg in (order.get("legs") or [])]
        return d
    legs = [{"symbol": leg.symbol, "side": _val(leg.side), "ratio_qty": leg.ratio_qty,
             "filled_qty": leg.filled_qty, "filled_avg_price": leg.filled_avg_price} for leg in (order.legs or [])]
    return {"id": str(order.id), "client_order_id": order.client_order_id, "status": _val(order.status),
            "symbol": order.symbol, "side": _val(order.side),
            "qty": order.qty, "filled_qty": order.filled_qty, "filled_avg_price": order.filled_avg_price,
            "limit_price": order.limit_price, "legs": legs}


def fnum(x: Any, default: float = 0.0) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


@dataclass(slots=True)
class LiveOpen:
    position: Position
    client_order_id: str
    fees: float = 0.0


@dataclass(slots=True)
class Outcome:
    cid: str
    filled_qty: int = 0
    credit: float | None = None  # per share of one unit, credit positive
    leg_prices: tuple[float, ...] = ()
    status: str = ""
    text: str = ""
    orders: list[str] = field(default_factory=list)


class AlpacaBroker:
    """Multi-leg orders on Alpaca with write-ahead journaling and lookup-after-fault."""

    def __init__(self, trading: Any, journal: Journal, walk: WalkParams | None = None,
                 watch: OrderWatch | None = None, on_error: Callable[[BaseException], None] | None = None,
                 read_retry: Any = None, clock: Callable[[], dt.datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.trading = trading
        self.journal = journal
        self.walk = walk or WalkParams()
        self.watch = watch
        self.on_error = on_error
        self.read_retry = read_retry or RetryPolicy(attempts=4, base=0.2, cap=2.0)
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.sleep = sleep
        self.positions: dict[str, LiveOpen] = {}
        self.quotes: dict[str, tuple[float, float]] = {}
        self._cash = 0.0
        self._bp = 0.0
        self.ts = self.clock()
        self.dry_run = False
        self.dry_orders: list[dict[str, Any]] = []
        self._resume_only = False
        self._meta: dict[str, Any] = {}

    # -- the market the driver hands us ---------------------------------------------------
    def set_market(self, ts: dt.datetime, quotes: Mapping[str, tuple[float, float]], cash: float,
                   buying_power: float) -> None:
        self.ts = ts
        self.quotes = dict(quotes)
        self._cash, self._bp = cash, buying_power

    def restore(self, positions: Mapping[str, tuple[Position, str]]) -> None:
        self.positions = {pid: LiveOpen(p, cid) for pid, (p, cid) in positions.items()}

    # -- Broker protocol ------------------------------------------------------------------
    @property
    def cash(self) -> float:
        return self._cash

    @property
    def reserved(self) -> float:
        return sum(op.position.max_loss * CONTRACT_MULTIPLIER * op.position.qty for op in self.positions.values())

    @property
    def free_buying_power(self) -> float:
        return self._bp

    def open_positions(self) -> Mapping[str, Position]:
        return {pid: op.position for pid, op in self.positions.items()}

    def trade_shares(self, qty: float, purpose: str) -> None:
        raise BrokerError(f"share orders ({purpose}) are not supported by the live Alpaca mode; "
                          "set hedge.enable_hedge = false")

    def start_session(self) -> list[VenueEvent]:
        return []  # assignments / exercises arrive as account activities (core.live.events)

    def end_session(self, next_ex_dividend: float | None) -> list[VenueEvent]:
        return []

    def submit(self, order: OrderRequest) -> OrderResult:
        self._meta = {"position_id": order.client_order_id, "intent": order.intent.value,
                      "structure": order.structure.value if order.structure else None, "qty": order.qty,
                      "legs": legs_to_json(order.legs), "limit": order.limit, "target": order.position_id,
                      "exit_reason": order.exit_reason.value if order.exit_reason else None}
        try:
            if order.intent is OrderIntent.OPEN:
                return self._submit_open(order)
            return self._submit_close(order)
        except BrokerError as exc:
            self.journal.event("dry_run" if self.dry_run else "reject", f"{order.client_order_id}: {exc}")
            return OrderResult(order, OrderStatus.REJECTED, self.ts, str(exc))

    def resume(self, decision_id: str) -> OrderResult | None:
        """Finish a decision whose orders a previous process planned (maybe sent): steps it journaled
        are looked up and read back (a working one is canceled), none is sent anew; a fill becomes
        the position (or closes it).  None when nothing of it reached Alpaca."""
        rows = self.journal.orders(decision_id)
        if not rows:
            return None
        meta = json.loads(rows[0]["body"]).get("meta") or {}
        order = OrderRequest(decision_id, OrderIntent(meta["intent"]),
                             Structure(meta["structure"]) if meta.get("structure") else None, int(meta["qty"]),
                             legs_from_json_list(meta.get("legs") or []), position_id=meta.get("target") or "",
                             limit=meta.get("limit"),
                             exit_reason=ExitReason(meta["exit_reason"]) if meta.get("exit_reason") else None)
        self._resume_only = True
        try:
            res = self.submit(order)
        finally:
            self._resume_only = False
        return res if res.status is OrderStatus.FILLED else None

    # -- pricing --------------------------------------------------------------------------
    def _quote(self, symbol: str) -> tuple[float, float]:
        q = self.quotes.get(symbol)
        if q is None or not (0 <= q[0] <= q[1]) or q[1] <= 0:
            raise BrokerError(f"no valid quote for {symbol}: not trading on a stale or crossed quote")
        return q

    def prices(self, legs: tuple[Leg, ...], units: int, opening: bool) -> tuple[float, float]:
        """(mid, natural) net credit per share of one unit for trading ``legs`` (leg qty = ratio x units)."""
        mid = natural = 0.0
        for leg in legs:
            bid, ask = self._quote(leg.contract.occ_symbol)
            selling = (leg.side is Side.SHORT) == opening
            ratio = leg.qty / units
            sign = 1.0 if selling else -1.0
            mid += sign * ratio * 0.5 * (bid + ask)
            natural += sign * ratio * (bid if selling else ask)
        return mid, natural

    def ladder(self, mid: float, natural: float, floor: float | None) -> list[float]:
        """Limit credits to try: mid - edge, walking by ``step`` to the natural price."""
        w = self.walk
        out: list[float] = []
        for k in range(w.max_steps):
            c = max(mid - w.edge - k * w.step, natural)
            if floor is not None and c < floor - 1e-9:
                break
            c = round(c, 2)
            if not out or c < out[-1] - 1e-9:
                out.append(c)
            if c <= natural + 1e-9:
                break
        return out

    def _journaled(self, decision_id: str) -> list[float]:
        rows = sorted(self.journal.orders(decision_id), key=lambda r: int(r["step"]))
        return [float(r["limit_credit"]) for r in rows]

    # -- opening ----------------------------------------------------------------------------
    def _submit_open(self, order: OrderRequest) -> OrderResult:
        if order.structure is None or not order.legs or order.qty <= 0:
            raise BrokerError(f"order {order.client_order_id}: an opening order needs a structure, legs and qty")
        legs = tuple(Leg(leg.role, leg.contract, leg.side, leg.qty * order.qty, leg.entry_price)
                     for leg in order.legs)
        if self._resume_only:
            ladder = self._journaled(order.client_order_id)
        else:
            mid, natural = self.prices(legs, order.qty, opening=True)
            ladder = self.ladder(mid, natural, order.limit)
        if not ladder:
            raise BrokerError(f"order {order.client_order_id}: natural credit {natural:.2f} below the limit "
                              f"{order.limit}")
        out = self._walk(order.client_order_id, "open", order.qty, legs, ladder, opening=True)
        if out.filled_qty <= 0 or out.credit is None:
            text = out.text or f"not filled after {len(out.orders)} order(s) ({', '.join(out.orders)})"
            raise BrokerError(text)
        qty = out.filled_qty
        filled = tuple(Leg(leg.role, leg.contract, leg.side, leg.qty * qty, px)
                       for leg, px in zip(order.legs, out.leg_prices or [leg.entry_price for leg in order.legs],
                                          strict=True))
        credit = round(out.credit, 4)
        max_loss = position_max_loss(filled, qty, credit)
        fees = round(self.walk.fee_per_contract * sum(leg.qty for leg in filled), 4)
        position = Position(order.client_order_id, order.structure, filled, qty, self.ts, credit, max_loss, fees)
        self.journal.position_opened(position, out.cid)
        self.positions[position.position_id] = LiveOpen(position, out.cid, fees)
        return OrderResult(order, OrderStatus.FILLED, self.ts, f"filled {qty}/{order.qty} at {credit:.2f} credit "
                                                                f"({out.cid})", position=position)

    # -- closing ----------------------------------------------------------------------------
    def _submit_close(self, order: OrderRequest) -> OrderResult:
        op = self.positions.get(order.position_id)
        if op is None:
            raise BrokerError(f"close {order.client_order_id}: no open position {order.position_id}")
        pos = op.position
        if self._resume_only:
            ladder = self._journaled(order.client_order_id)
        else:
            mid, natural = self.prices(pos.legs, pos.qty, opening=False)
            ladder = self.ladder(mid, natural, None)
        out = self._walk(order.client_order_id, "close", pos.qty, pos.legs, ladder, opening=False)
        if out.filled_qty <= 0 or out.credit is None:
            raise BrokerError(out.text or f"close of {pos.position_id} not filled after {len(out.orders)} order(s)")
        reason = order.exit_reason or ExitReason.END_OF_DATA
        rest = None
        if out.filled_qty < pos.qty:  # a partial close: the closed units become their own closed row
            n = out.filled_qty
            rest = replace(pos, legs=_scaled(pos.legs, pos.qty, pos.qty - n), qty=pos.qty - n)
            pos = replace(pos, position_id=f"{pos.position_id}~{out.cid.rsplit('-', 1)[0][-13:]}",
                          legs=_scaled(pos.legs, pos.qty, n), qty=n, entry_fees=0.0)
            self.journal.position_opened(pos, op.client_order_id)
            self.journal.position_reduced(rest)
        exit_debit = round(-out.credit, 4)
        prices = out.leg_prices or tuple(0.0 for _ in pos.legs)
        exit_fees = round(self.walk.fee_per_contract * sum(leg.qty for leg in pos.legs), 4)
        fees = op.fees + exit_fees
        pnl = round((pos.credit - exit_debit) * CONTRACT_MULTIPLIER * pos.qty - fees, 6)
        trade = ClosedTrade(pos, self.ts, tuple(prices), exit_debit, round(fees, 6), pnl, reason, {})
        self.journal.position_closed(trade, out.cid)
        if rest is not None:
            self.positions[rest.position_id] = LiveOpen(rest, op.client_order_id, op.fees)
            return OrderResult(order, OrderStatus.FILLED, self.ts, f"closed {pos.qty}/{pos.qty + rest.qty} at "
                                                                    f"{exit_debit:.2f} debit ({out.cid}); rest open",
                               trade=trade)
        del self.positions[pos.position_id]
        return OrderResult(order, OrderStatus.FILLED, self.ts, f"closed at {exit_debit:.2f} debit ({out.cid})",
                           trade=trade)

    # -- the walk ----------------------------------------------------------------------------
    def order_body(self, cid: str, qty: int, legs: tuple[Leg, ...], credit: float, opening: bool) -> dict[str, Any]:
        units = qty
        out_legs = []
        for leg in legs:
            selling = (leg.side is Side.SHORT) == opening
            side = "sell" if selling else "buy"
            intent = ("sell_to_open" if selling else "buy_to_open") if opening else \
                ("sell_to_close" if selling else "buy_to_close")
            out_legs.append({"symbol": leg.contract.occ_symbol, "ratio_qty": leg.qty // units, "side": side,
                             "position_intent": intent})
        if len(out_legs) == 1 and out_legs[0]["ratio_qty"] == 1:
            # one leg is a simple option order (mleg needs 2-4 legs): a positive per-share price
            one = out_legs[0]
            return {"client_order_id": cid, "qty": units, "limit_price": round(abs(credit), 2), "legs": out_legs,
                    "symbol": one["symbol"], "side": one["side"], "position_intent": one["position_intent"]}
        return {"client_order_id": cid, "qty": units, "limit_price": round(-credit, 2), "legs": out_legs}

    def _walk(self, base: str, intent: str, qty: int, legs: tuple[Leg, ...], ladder: list[float],
              opening: bool) -> Outcome:
        remaining = qty
        total = Outcome(cid=f"{base}-0")
        credits: list[tuple[int, float, tuple[float, ...]]] = []
        for k, credit in enumerate(ladder):
            cid = f"{base}-{k}"
            total.cid = cid
            total.orders.append(cid)
            res = self._one_order(cid, base, k, intent, remaining, legs, credit, opening)
            if res.filled_qty > 0 and res.credit is not None:
                credits.append((res.filled_qty, res.credit, res.leg_prices))
                remaining -= res.filled_qty
            if res.status in ("rejected", "not_sent", "dry_run"):
                total.text = res.text
                break
            if remaining <= 0:
                break
        filled = qty - remaining
        if filled > 0:
            total.filled_qty = filled
            total.credit = sum(n * c for n, c, _ in credits) / filled
            n_legs = len(legs)
            prices = [sum(n * p[i] for n, _, p in credits if p) / max(1, sum(n for n, _, p in credits if p))
                      for i in range(n_legs)] if all(p for _, _, p in credits) else []
            total.leg_prices = tuple(round(x, 4) for x in prices)
        return total

    def _one_order(self, cid: str, base: str, step: int, intent: str, qty: int, legs: tuple[Leg, ...],
                   credit: float, opening: bool) -> Outcome:
        body = self.order_body(cid, qty, legs, credit, opening)
        known = self.journal.order_status(cid)
        if self.dry_run:
            self.dry_orders.append(body)
            self.journal.event("dry_run", f"would send {cid}: {qty} x limit {body['limit_price']:+.2f} "
                                          f"{[leg['symbol'] for leg in body['legs']]}")
            return Outcome(cid, status="dry_run", text="dry run: not sent")
        order: dict[str, Any] | None = None
        if known is not None and known != "unsent":
            order = self.lookup(cid)  # a restart: this step was planned (maybe sent) before
            if order is None and known in FINAL_STATUSES:
                return Outcome(cid, status=known)
        if order is None and self._resume_only:
            return Outcome(cid, status="not_sent", text=f"{cid} was never sent")
        if order is None:
            if known is None:
                self.journal.order_planned(cid, base, step, intent, qty, credit, {**body, "meta": self._meta})
            order = self._post(cid, body)
            if order is None:  # every attempt failed and every lookup said Alpaca has no such order
                self.journal.order_update(cid, None, "unsent", 0, None, "not accepted after 3 attempts (404 by id)")
                return Outcome(cid, status="unsent", text=f"{cid}: not accepted after 3 attempts")
            if order.get("status") == "rejected_by_api":
                return Outcome(cid, status="rejected", text=str(order.get("text")))
        self.journal.order_update(cid, str(order.get("id")), str(order.get("status")), 0, None)
        order = self._await(cid, order)
        if order.get("status") not in FINAL_STATUSES:
            order = self._cancel(cid, order)
        return self._outcome(cid, order, legs, qty, opening)

    def _post(self, cid: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, OptionLegRequest
        if body.get("symbol"):
            req = LimitOrderRequest(symbol=body["symbol"], qty=body["qty"], side=OrderSide(body["side"]),
                                    time_in_force=TimeInForce.DAY, limit_price=body["limit_price"],
                                    client_order_id=cid, position_intent=PositionIntent(body["position_intent"]))
        else:
            req = LimitOrderRequest(qty=body["qty"], order_class=OrderClass.MLEG, time_in_force=TimeInForce.DAY,
                                    limit_price=body["limit_price"], client_order_id=cid,
                                    legs=[OptionLegRequest(symbol=leg["symbol"], ratio_qty=leg["ratio_qty"],
                                                           side=OrderSide(leg["side"]),
                                                           position_intent=PositionIntent(leg["position_intent"]))
                                          for leg in body["legs"]])
        last: BaseException = BrokerError("no attempt")
        for attempt in range(3):
            if attempt:
                self.sleep(self.read_retry.delay(attempt - 1, last))  # Retry-After when the answer gave one
            try:
                return order_dict(self.trading.submit_order(req))
            except Exception as exc:  # noqa: BLE001 -- classified below
                last = exc
                self._error(exc)
                kind = classify(exc)
                if kind is Failure.REJECTED:
                    text = error_text(exc)
                    self.journal.order_update(cid, None, "rejected", 0, None, text)
                    return {"status": "rejected_by_api", "text": f"{cid} rejected: {text}"}
                self.journal.event("ambiguous", f"{cid}: {error_text(exc)}; looking it up by client id")
                found = self.lookup(cid)
                if found is not None:
                    return found
                # 404 by client id: it never reached Alpaca; the same id is safe to send again
        return None

    def lookup(self, cid: str) -> dict[str, Any] | None:
        """The order with this client id, None when Alpaca has none (404)."""
        try:
            return order_dict(call_read(lambda: self.trading.get_order_by_client_id(cid), self.read_retry,
                                        f"look up {cid}", self._error))
        except Exception as exc:  # noqa: BLE001
            if classify(exc) is Failure.NOT_FOUND:
                return None
            raise BrokerError(f"{cid}: cannot tell whether the order exists ({exc}); stopping") from exc

    def _refresh(self, cid: str, order: Mapping[str, Any]) -> dict[str, Any]:
        oid = str(order.get("id"))
        return order_dict(call_read(lambda: self.trading.get_order_by_id(oid), self.read_retry, f"read {cid}",
                                    self._error))

    def _await(self, cid: str, order: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.walk.wait_s
        while order.get("status") not in FINAL_STATUSES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.watch is not None:
                self.watch.wait(cid, min(left, self.walk.poll_s))
            else:
                self.sleep(min(left, self.walk.poll_s))
            order = self._refresh(cid, order)
        return order

    def _cancel(self, cid: str, order: dict[str, Any]) -> dict[str, Any]:
        oid = str(order.get("id"))
        try:
            self.trading.cancel_order_by_id(oid)
        except Exception as exc:  # noqa: BLE001 -- 422 not cancelable (it filled), 404
            self._error(exc)
            if classify(exc) is Failure.AMBIGUOUS:
                self.journal.event("ambiguous", f"cancel {cid}: {exc}")
        for _ in range(20):  # read the final state back: a cancel can race a fill
            order = self._refresh(cid, order)
            if order.get("status") in FINAL_STATUSES:
                return order
            self.sleep(min(0.25, self.walk.poll_s))
        raise BrokerError(f"{cid}: cancel not confirmed; the order may still be working")

    def _outcome(self, cid: str, order: Mapping[str, Any], legs: tuple[Leg, ...], qty: int,
                 opening: bool) -> Outcome:
        status = str(order.get("status"))
        filled = int(fnum(order.get("filled_qty")))
        credit = None
        prices: tuple[float, ...] = ()
        if filled > 0:
            by_symbol = {str(leg.get("symbol")): leg for leg in order.get("legs") or []}
            if not by_symbol and order.get("symbol") and len(legs) == 1:  # a simple (one-leg) order
                by_symbol = {str(order.get("symbol")): dict(order)}
            leg_px = [fnum(by_symbol.get(leg.contract.occ_symbol, {}).get("filled_avg_price"), float("nan"))
                      for leg in legs]
            if all(math.isfinite(p) for p in leg_px):
                prices = tuple(leg_px)
                credit = 0.0
                for leg, px in zip(legs, leg_px, strict=True):
                    selling = (leg.side is Side.SHORT) == opening
                    credit += (1.0 if selling else -1.0) * (leg.qty / qty) * px
            else:
                credit = -fnum(order.get("filled_avg_price"))
        self.journal.order_update(cid, str(order.get("id")), status, filled, credit)
        text = "" if filled else f"{cid} {status}"
        return Outcome(cid, filled, credit, prices, status, text)

    def _error(self, exc: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(exc)


def _scaled(legs: tuple[Leg, ...], units: int, new_units: int) -> tuple[Leg, ...]:
    return tuple(Leg(leg.role, leg.contract, leg.side, leg.qty // units * new_units, leg.entry_price) for leg in legs)


def legs_to_json(legs: tuple[Leg, ...]) -> list[dict[str, Any]]:
    return [{"role": leg.role.value, "underlying": leg.contract.underlying, "expiry": leg.contract.expiry.isoformat(),
             "strike": leg.contract.strike, "right": leg.contract.right.value, "side": leg.side.value,
             "qty": leg.qty, "price": leg.entry_price} for leg in legs]


def legs_from_json_list(items: list[dict[str, Any]]) -> tuple[Leg, ...]:
    return tuple(Leg(LegRole(d["role"]), OptionContract(d["underlying"], dt.date.fromisoformat(d["expiry"]),
                                                        float(d["strike"]), OptionRight(d["right"])),
                     Side(d["side"]), int(d["qty"]), float(d["price"])) for d in items)


def contract_of(symbol: str) -> OptionContract:
    """Parse an OCC symbol (``SPY250117C00500000``)."""
    root = symbol[:-15]
    tail = symbol[-15:]
    expiry = dt.date(2000 + int(tail[:2]), int(tail[2:4]), int(tail[4:6]))
    right = OptionRight.CALL if tail[6] == "C" else OptionRight.PUT
    return OptionContract(root, expiry, int(tail[7:]) / 1000.0, right)


def venue_event(ts: dt.datetime, code: ReasonCode, pid: str, text: str) -> VenueEvent:
    return VenueEvent(ts, code, pid, text)
