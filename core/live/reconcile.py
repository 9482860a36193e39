"""Reconcile the ledger with Alpaca: at start-up and after every stream reconnect.

The rule (the broker is the source of truth for fills and positions; fail closed):

1. **Unresolved orders.**  Every decision with an order the ledger does not know the end of
   (``planned`` -- maybe sent -- or still working) is resumed: each journaled step is looked up
   by its ``client_order_id``; a working order is canceled and read back; a fill becomes the
   position (or closes it) exactly as if the process had never stopped.  A ``planned`` step
   Alpaca has never seen (404) is marked ``unsent``.  Nothing is ever sent during reconcile.
2. **Positions.**  Net contracts per OCC symbol in the ledger's open positions are compared
   with ``GET /v2/positions``.  A ledger position whose legs the broker no longer holds is
   closed in the ledger as ``closed_external`` (expired, assigned, closed by hand -- the
   activities say which).  Contracts the broker holds that no ledger position explains are
   reported as ``broker_only`` and the kill switch goes to REDUCING: no new entries until a
   person looks (a missing report never means flat; an unexplained one never means ours).
3. **Open orders** at the broker whose client id the ledger does not know are reported
   (``foreign``) and left alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from core.broker.alpaca import AlpacaBroker, order_dict
from core.broker.alpaca_http import RetryPolicy, call_read
from core.live.ledger import Ledger

UTC = dt.UTC


@dataclass
class ReconcileReport:
    ts: dt.datetime
    resumed: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)
    closed_external: list[str] = field(default_factory=list)
    broker_only: dict[str, int] = field(default_factory=dict)
    ledger_only: dict[str, int] = field(default_factory=dict)
    foreign_orders: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.broker_only and not self.ledger_only

    def summary(self) -> str:
        parts = [f"resumed {len(self.resumed)}", f"unsent {len(self.unsent)}",
                 f"closed_external {len(self.closed_external)}"]
        if self.broker_only:
            parts.append(f"broker_only {self.broker_only}")
        if self.ledger_only:
            parts.append(f"ledger_only {self.ledger_only}")
        if self.foreign_orders:
            parts.append(f"foreign open orders {len(self.foreign_orders)}")
        return "reconcile: " + ", ".join(parts) + ("" if self.clean else " -- DIFFERENCES (broker wins)")


def broker_positions(trading: Any, retry: RetryPolicy) -> dict[str, int]:
    rows = call_read(trading.get_all_positions, retry, "read positions")
    out: dict[str, int] = {}
    for p in rows:
        sym = p["symbol"] if isinstance(p, dict) else p.symbol
        qty = int(float(p["qty"] if isinstance(p, dict) else p.qty))
        if qty:
            out[str(sym)] = qty
    return out


def open_broker_orders(trading: Any, retry: RetryPolicy) -> list[dict[str, Any]]:
    from alpaca.trading.enums import QueryOrderStatus
    from alpaca.trading.requests import GetOrdersRequest

    req = GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True)
    return [order_dict(o) for o in call_read(lambda: trading.get_orders(req), retry, "read open orders")]


def reconcile(ledger: Ledger, broker: AlpacaBroker, retry: RetryPolicy | None = None) -> ReconcileReport:
    retry = retry or broker.read_retry
    report = ReconcileReport(dt.datetime.now(UTC))
    broker.restore(ledger.open_positions())
    # 1. unresolved orders
    pending = []
    for row in ledger.unresolved_orders():
        if row["decision_id"] not in pending:
            pending.append(row["decision_id"])
    for decision_id in pending:
        res = broker.resume(decision_id)
        if res is not None:
            report.resumed.append(decision_id)
    for row in ledger.unresolved_orders():
        found = broker.lookup(row["cid"])
        if found is None:
            ledger.order_update(row["cid"], None, "unsent", 0, None, "never reached Alpaca (404 by client id)")
            report.unsent.append(row["cid"])
        else:
            ledger.order_update(row["cid"], str(found.get("id")), str(found.get("status")), 0, None)
    # 2. positions: the broker wins
    held = broker_positions(broker.trading, retry)
    for pid, (pos, _) in ledger.open_positions().items():
        if any(held.get(leg.contract.occ_symbol, 0) * leg.side.sign < leg.qty for leg in pos.legs):
            missing = [leg.contract.occ_symbol for leg in pos.legs
                       if held.get(leg.contract.occ_symbol, 0) * leg.side.sign < leg.qty]
            ledger.mark_position(pid, "closed_external", "broker no longer holds " + ",".join(missing))
            report.closed_external.append(pid)
    broker.restore(ledger.open_positions())
    ours = ledger.symbol_quantities()
    for sym in sorted(set(ours) | set(held)):
        a, b = ours.get(sym, 0), held.get(sym, 0)
        if a == b:
            continue
        if b and abs(b) > abs(a) or (a == 0):
            report.broker_only[sym] = b - a
        else:
            report.ledger_only[sym] = a - b
    # 3. open orders the ledger does not know
    known = {o["cid"] for o in ledger.orders()}
    for o in open_broker_orders(broker.trading, retry):
        if o.get("client_order_id") not in known:
            report.foreign_orders.append(str(o.get("client_order_id")))
    ledger.event("reconcile", report.summary())
    return report
