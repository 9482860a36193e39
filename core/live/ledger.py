"""The crash-safe ledger of a live session (SQLAlchemy: SQLite in the session folder, or PostgreSQL).

Every intent, order, fill, cash movement, position change, account activity and kill-switch
state is written -- each in its own committed transaction -- *before* the loop acts on it.
The order row of a step is written with status ``planned`` before its POST, so a process
killed between "order sent" and "ledger written" leaves a ``planned`` row that the next
start-up resolves by looking the client id up at Alpaca (``core.live.reconcile``).

Tables: ``meta`` (key/value: kill switch, session facts), ``intents``, ``orders``, ``fills``,
``positions``, ``cash``, ``activities``, ``events``.  Nothing here ever holds a credential.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from core.broker.alpaca import legs_from_json_list, legs_to_json
from core.broker.protocol import ClosedTrade
from core.dto import Leg, Position, Structure

UTC = dt.UTC
FINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "unsent"})

metadata = MetaData()
meta_t = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
intents_t = Table("intents", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("decision_id", String(128), index=True), Column("ts", String(40)),
                  Column("action", String(16)), Column("payload", Text))
orders_t = Table("orders", metadata, Column("cid", String(128), primary_key=True),
                 Column("decision_id", String(128), index=True), Column("step", Integer), Column("intent", String(8)),
                 Column("qty", Integer), Column("limit_credit", Float), Column("body", Text),
                 Column("broker_id", String(64)), Column("status", String(24)), Column("filled_qty", Integer),
                 Column("avg_credit", Float), Column("text", Text), Column("created", String(40)),
                 Column("updated", String(40)))
fills_t = Table("fills", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                Column("cid", String(128), index=True), Column("qty", Integer), Column("credit", Float),
                Column("ts", String(40)), Column("source", String(16)))
positions_t = Table("positions", metadata, Column("position_id", String(128), primary_key=True),
                    Column("cid", String(128)), Column("structure", String(32)), Column("legs", Text),
                    Column("qty", Integer), Column("opened_at", String(40)), Column("credit", Float),
                    Column("max_loss", Float), Column("fees", Float), Column("status", String(24)),
                    Column("closed_at", String(40)), Column("exit_debit", Float), Column("pnl", Float),
                    Column("exit_reason", Text), Column("close_cid", String(128)))
cash_t = Table("cash", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
               Column("ts", String(40)), Column("amount", Float), Column("kind", String(16)), Column("note", Text))
activities_t = Table("activities", metadata, Column("id", String(128), primary_key=True),
                     Column("type", String(16)), Column("symbol", String(40)), Column("qty", Float),
                     Column("date", String(40)), Column("raw", Text))
events_t = Table("events", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("ts", String(40)), Column("kind", String(24)), Column("text", Text))


def _now() -> str:
    return dt.datetime.now(UTC).isoformat()


def legs_json(legs: tuple[Leg, ...]) -> str:
    return json.dumps(legs_to_json(legs))


def legs_from_json(text: str) -> tuple[Leg, ...]:
    return legs_from_json_list(json.loads(text))


def database_url(session_dir: Path, url: str | None) -> str:
    return url or f"sqlite:///{(Path(session_dir) / 'ledger.sqlite').as_posix()}"


class Ledger:
    """The session's ledger; implements ``core.broker.alpaca.Journal``."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _: Any) -> None:  # crash safety: WAL + fsync on commit
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _exec(self, stmt: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- meta -----------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta_t.c.value).where(meta_t.c.key == key)).first()
        return row[0] if row else default

    def set(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(meta_t.c.key).where(meta_t.c.key == key)).first():
                conn.execute(update(meta_t).where(meta_t.c.key == key).values(value=value))
            else:
                conn.execute(insert(meta_t).values(key=key, value=value))

    # -- intents and events ------------------------------------------------------------------
    def intent(self, decision_id: str, ts: dt.datetime, action: str, payload: Mapping[str, Any]) -> None:
        self._exec(insert(intents_t).values(decision_id=decision_id, ts=ts.isoformat(), action=action,
                                            payload=json.dumps(payload, default=str)))

    def has_intent(self, decision_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(intents_t.c.id).where(intents_t.c.decision_id == decision_id)).first() \
                is not None

    def event(self, kind: str, text: str) -> None:
        self._exec(insert(events_t).values(ts=_now(), kind=kind, text=text))

    def events(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            return [(r.ts, r.kind, r.text) for r in conn.execute(select(events_t).order_by(events_t.c.id))]

    # -- orders (Journal) -------------------------------------------------------------------
    def order_planned(self, cid: str, decision_id: str, step: int, intent: str, qty: int, limit_credit: float,
                      body: Mapping[str, Any]) -> None:
        now = _now()
        self._exec(insert(orders_t).values(cid=cid, decision_id=decision_id, step=step, intent=intent, qty=qty,
                                           limit_credit=limit_credit, body=json.dumps(body), broker_id=None,
                                           status="planned", filled_qty=0, avg_credit=None, text="",
                                           created=now, updated=now))

    def order_update(self, cid: str, broker_id: str | None, status: str, filled_qty: int,
                     avg_credit: float | None, text: str = "") -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(orders_t).where(orders_t.c.cid == cid)).first()
            if row is None:
                return
            values: dict[str, Any] = {"status": status, "updated": _now()}
            if broker_id:
                values["broker_id"] = broker_id
            if text:
                values["text"] = text
            prev = int(row.filled_qty or 0)
            if filled_qty > prev:
                values["filled_qty"] = filled_qty
                values["avg_credit"] = avg_credit
                conn.execute(insert(fills_t).values(cid=cid, qty=filled_qty - prev, credit=avg_credit, ts=_now(),
                                                    source="order"))
                if avg_credit is not None:  # premium received (+) or paid (-), dollars
                    conn.execute(insert(cash_t).values(ts=_now(), amount=avg_credit * 100 * (filled_qty - prev),
                                                       kind=row.intent, note=cid))
            conn.execute(update(orders_t).where(orders_t.c.cid == cid).values(**values))

    def order_status(self, cid: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(orders_t.c.status).where(orders_t.c.cid == cid)).first()
        return row[0] if row else None

    def orders(self, decision_id: str | None = None) -> list[dict[str, Any]]:
        q = select(orders_t).order_by(orders_t.c.created, orders_t.c.cid)
        if decision_id is not None:
            q = q.where(orders_t.c.decision_id == decision_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def unresolved_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.orders() if o["status"] not in FINAL]

    def fills(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(fills_t).order_by(fills_t.c.id))]

    def cash_total(self) -> float:
        with self.engine.connect() as conn:
            return float(sum(r.amount for r in conn.execute(select(cash_t.c.amount))))

    # -- positions ------------------------------------------------------------------------
    def position_opened(self, position: Position, cid: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(positions_t.c.position_id)
                            .where(positions_t.c.position_id == position.position_id)).first():
                return
            conn.execute(insert(positions_t).values(
                position_id=position.position_id, cid=cid, structure=position.structure.value,
                legs=legs_json(position.legs), qty=position.qty, opened_at=position.opened_at.isoformat(),
                credit=position.credit, max_loss=position.max_loss, fees=position.entry_fees, status="open"))

    def position_closed(self, trade: ClosedTrade, cid: str) -> None:
        self._exec(update(positions_t).where(positions_t.c.position_id == trade.position.position_id).values(
            status="closed", closed_at=trade.exit_time.isoformat(), exit_debit=trade.exit_debit, pnl=trade.pnl,
            exit_reason=trade.exit_reason.value, close_cid=cid))

    def position_reduced(self, position: Position) -> None:
        """A partial close: the position keeps ``position.qty`` units (the closed ones have their own row)."""
        self._exec(update(positions_t).where(positions_t.c.position_id == position.position_id).values(
            qty=position.qty, legs=legs_json(position.legs)))

    def mark_position(self, position_id: str, status: str, note: str) -> None:
        self._exec(update(positions_t).where(positions_t.c.position_id == position_id).values(
            status=status, closed_at=_now(), exit_reason=note))

    def positions(self, status: str | None = "open") -> list[dict[str, Any]]:
        q = select(positions_t).order_by(positions_t.c.opened_at, positions_t.c.position_id)
        if status is not None:
            q = q.where(positions_t.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def open_positions(self) -> dict[str, tuple[Position, str]]:
        out = {}
        for r in self.positions("open"):
            pos = Position(r["position_id"], Structure(r["structure"]), legs_from_json(r["legs"]), int(r["qty"]),
                           dt.datetime.fromisoformat(r["opened_at"]), float(r["credit"]), float(r["max_loss"]),
                           float(r["fees"] or 0.0))
            out[pos.position_id] = (pos, str(r["cid"]))
        return out

    def symbol_quantities(self) -> dict[str, int]:
        """Net signed contracts per OCC symbol over the open positions (what the broker should hold)."""
        out: dict[str, int] = {}
        for pos, _ in self.open_positions().values():
            for leg in pos.legs:
                sym = leg.contract.occ_symbol
                out[sym] = out.get(sym, 0) + leg.side.sign * leg.qty
        return {s: q for s, q in out.items() if q}

    # -- activities -----------------------------------------------------------------------
    def activity(self, act_id: str, act_type: str, symbol: str, qty: float, date: str, raw: Mapping[str, Any]
                 ) -> bool:
        """Record an account activity once; True when it was new."""
        with self.engine.begin() as conn:
            if conn.execute(select(activities_t.c.id).where(activities_t.c.id == act_id)).first():
                return False
            conn.execute(insert(activities_t).values(id=act_id, type=act_type, symbol=symbol, qty=qty, date=date,
                                                     raw=json.dumps(raw, default=str)))
            return True

    def activities(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(activities_t))]
