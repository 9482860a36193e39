"""Session control: one decision cycle per closed bar -- data -> snapshot -> ``decide`` -> orders.

A cycle (``LiveSession.cycle``):

1. Alpaca's clock: a closed market prints one status line and waits for the next open.
2. Reconcile first when the trade-update stream reconnected (events missed while it was down
   are never replayed).
3. Data for the bar that just closed (``core.live.data``): the feature window, the option
   chain, the account; quotes older than ``stale_after_s`` are not traded on.
4. The kill switch reads the cycle (drawdown, stale data, kill file, signals).
5. The cycle's inputs go to ``cycles.jsonl`` *before* deciding; ``decide(snapshot, cfg)`` --
   the backtest's decision core -- returns the decisions; each is written to
   ``decisions.jsonl`` and, if the kill switch allows it, becomes one multi-leg order walk
   (``core.broker.alpaca``) whose every step is in the ledger before it is sent.
6. One status line (and, on a terminal, the console view).

Decision ids are deterministic -- ``qm-<YYYYMMDD-HHMM>-enter`` and
``qm-<YYYYMMDD-HHMM>-exit-<position>`` -- so a restart inside the same bar finds its own
orders in the ledger and resumes them instead of sending new ones.  Share hedges are not sent
(``hedge.enable_hedge`` must stay off for live trading).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.broker.alpaca import AlpacaBroker, OrderWatch, WalkParams
from core.broker.alpaca_http import RetryPolicy, error_text
from core.broker.protocol import OrderRequest, OrderStatus
from core.config import AppConfig
from core.dto import Action, DecisionRecord, LegMarks, OrderIntent, Position, TradeDecision
from core.live.clients import Clients, Credentials, endpoints, make_clients
from core.live.data import (
    NY,
    CycleInputs,
    LiveData,
    RollingFeatures,
    atm_iv,
    build_slices,
    closed_bars,
    marks_for,
    session_facts,
    usable,
    vix_proxy,
)
from core.live.events import TradeEvents, poll_activities
from core.live.killswitch import KillParams, KillState, KillSwitch
from core.live.ledger import Ledger, database_url
from core.live.reconcile import reconcile
from strategies.decide import decide


@dataclass(frozen=True)
class LiveOptions:
    out: Path
    paper: bool = True
    once: bool = False
    dry_run: bool = False
    broker_url: str | None = None
    data_url: str | None = None
    db: str | None = None
    flatten_on_halt: bool = False
    reset_kill_switch: bool = False
    timeout_s: float = 10.0
    requests_per_minute: float = 190.0
    walk: WalkParams = field(default_factory=WalkParams)
    kill: KillParams = field(default_factory=KillParams)
    warmup_days: int = 10
    daily_days: int = 400
    bar_delay_s: float = 3.0
    stream: bool = True
    stream_min_backoff: float = 1.0
    stream_max_backoff: float = 30.0
    read_attempts: int = 4
    read_backoff_s: float = 0.5
    max_cycles: int | None = None
    console: bool | None = None  # None: when stdout is a terminal


class SessionFiles:
    """Append-only JSON lines in the session folder, flushed and fsynced per record."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def append(self, name: str, record: dict[str, Any]) -> None:
        path = self.folder / name
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def line(self, name: str, text: str) -> None:
        with (self.folder / name).open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()


def decision_id(ts: dt.datetime, d: TradeDecision) -> str:
    stamp = ts.astimezone(NY).strftime("%Y%m%d-%H%M")
    if d.action in (Action.EXIT, Action.ROLL):
        return f"qm-{stamp}-{d.action.value}-{d.position_id.removeprefix('qm-')}"
    return f"qm-{stamp}-{d.action.value}"


def decision_json(ts: dt.datetime, d: TradeDecision, did: str) -> dict[str, Any]:
    rec = DecisionRecord(ts, d.action, d.codes, "; ".join(d.reasons), d.position_id, d.exit_reason, d.scores)
    out = rec.to_json()
    out.update({"decision_id": did, "qty": d.qty, "structure": d.structure.value if d.structure else None,
                "limit": d.limit, "legs": [[leg.contract.occ_symbol, leg.side.name, leg.qty] for leg in d.legs]})
    return json.loads(json.dumps(out, default=str).replace("NaN", "null"))


class LiveSession:
    def __init__(self, cfg: AppConfig, opts: LiveOptions, creds: Credentials,
                 printer: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> None:
        if cfg.hedge.enable_hedge:
            from core.dto import ConfigError

            raise ConfigError("hedge.enable_hedge: share hedges are not supported in --mode live; turn it off")
        self.cfg, self.opts = cfg, opts
        self.printer, self.sleep = printer, sleep
        self.files = SessionFiles(opts.out)
        self.ledger = Ledger(database_url(opts.out, opts.db))
        self.kill = KillSwitch(self.ledger, opts.kill)
        if opts.reset_kill_switch:
            self.kill.reset()
        self.retry = RetryPolicy(attempts=opts.read_attempts, base=opts.read_backoff_s, cap=max(opts.read_backoff_s,
                                                                                               8.0))
        ep = endpoints(opts.paper, opts.broker_url, opts.data_url)
        self.clients: Clients = make_clients(creds, ep, opts.timeout_s, opts.requests_per_minute)
        self.watch = OrderWatch()
        self.broker = AlpacaBroker(self.clients.trading, self.ledger, opts.walk, self.watch,
                                   on_error=self.kill.broker_error, read_retry=self.retry)
        self.broker.dry_run = opts.dry_run
        self.data = LiveData(self.clients, cfg.strategy.underlying, self.retry, self.kill.broker_error)
        self.features = RollingFeatures(cfg)
        self.events: TradeEvents | None = None
        self.cycles = 0
        self.stop_requested = ""
        self.halt_done = False
        self.last_status = ""
        self.run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")

    # -- start / stop -----------------------------------------------------------------------
    def start(self) -> None:
        ep = self.clients.endpoints
        self.files.append("sessions.jsonl", {
            "started": dt.datetime.now(dt.UTC).isoformat(), "paper": ep.paper, "trading_url": ep.trading,
            "data_url": ep.data, "dry_run": self.opts.dry_run, "once": self.opts.once,
            "db": "sqlite (session folder)" if self.opts.db is None else self.opts.db.split("@")[-1],
            "kill_switch": self.kill.describe()})
        self._reconcile("start-up")
        self._activities()
        if self.opts.stream and not self.opts.once:
            creds = self.clients.credentials
            self.events = TradeEvents(creds.key_id, creds.secret_key, ep.paper, ep.stream, self.watch,
                                      self.opts.stream_min_backoff, self.opts.stream_max_backoff).start()

    def _reconcile(self, why: str) -> None:
        """Ledger vs broker (``core.live.reconcile``); differences it cannot explain reduce the session."""
        report = reconcile(self.ledger, self.broker, self.retry)
        self.printer(f"{why}: {report.summary()}")
        if not report.clean:
            self.kill.trip(KillState.REDUCING, "reconcile", f"ledger and broker differ after {why}: broker-only "
                                                            f"{report.broker_only}, ledger-only {report.ledger_only}")

    def close(self) -> None:
        if self.events is not None:
            self.events.stop()
        self.ledger.close()

    def request_stop(self, why: str) -> None:
        self.stop_requested = why
        self.kill.signalled = why

    def _activities(self) -> None:
        try:
            new = poll_activities(self.clients.trading, self.ledger, self.retry)
        except Exception as exc:  # noqa: BLE001 -- activities are advisory; reconcile is authoritative
            self.ledger.event("activities", f"could not read activities: {error_text(exc)}")
            return
        if new:
            self._reconcile(f"{len(new)} new account activities (assignment/exercise/expiry)")

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 -- fail closed: no trading without a reconciled ledger
            self.printer(f"start-up reconciliation failed ({error_text(exc)}); nothing was sent")
            self.ledger.event("startup", f"reconciliation failed: {error_text(exc)}")
            self.close()
            return 3
        try:
            while not self.stop_requested:
                wait = self.cycle()
                self.cycles += 1
                if self.opts.once or self.kill.state is KillState.HALTED:
                    break
                if self.opts.max_cycles is not None and self.cycles >= self.opts.max_cycles:
                    break
                self._sleep(wait)
            if self.stop_requested:
                self.kill.trip(KillState.HALTED, "signal", f"{self.stop_requested} received")
                self._halt_if_needed(dt.datetime.now(dt.UTC))
        finally:
            self.close()
        return 0 if self.kill.state is not KillState.HALTED or self.stop_requested else 3

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while not self.stop_requested:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.sleep(min(left, 1.0))

    def cycle(self) -> float:
        """One decision cycle; returns the seconds until the next one."""
        minutes = self.cfg.backtest.bar_minutes
        try:
            clock = self.data.clock()
        except Exception as exc:  # noqa: BLE001
            self.kill.broker_error(exc)
            self._status(f"clock unavailable: {error_text(exc)}")
            return 30.0
        now: dt.datetime = clock["timestamp"]
        if not clock["is_open"]:
            self._halt_if_needed(now)
            nxt = clock["next_open"]
            self._status(f"{now.astimezone(NY):%Y-%m-%d %H:%M} ET | market closed; next open "
                         f"{nxt.astimezone(NY):%Y-%m-%d %H:%M} ET | kill {self.kill.describe()}")
            return max(1.0, min((nxt - now).total_seconds() + self.opts.bar_delay_s, 3600.0))
        self._drain_events()
        if self.events is not None and self.events.reconnected.is_set():
            self.events.reconnected.clear()
            self._reconcile("stream reconnect")
        try:
            inputs, quotes = self._inputs(now, clock["next_close"], minutes)
        except Exception as exc:  # noqa: BLE001 -- data failure: no decision this bar
            self.kill.broker_error(exc)
            self._halt_if_needed(now)
            self._status(f"{now.astimezone(NY):%H:%M} ET | no decision: {error_text(exc)} | "
                         f"kill {self.kill.describe()}")
            return self._until_next_bar(now, minutes)
        self.kill.broker_ok()
        self.kill.new_day(inputs.session.session_date)
        if self.cycles and self.cycles % 12 == 0:  # assignments / exercises / expiries, about hourly
            self._activities()
        equity = inputs.cash + sum(float(np.dot(p.signed_qty, m.mid)) * 100 for p, m in inputs.positions)
        self.kill.check(equity, inputs.start_of_day_equity, inputs.extra.get("quote_age_s"))
        self.broker.set_market(inputs.ts, {s: (q.bid, q.ask) for s, q in quotes.items()}, inputs.cash,
                               float(inputs.extra.get("buying_power", 0.0)))
        self._halt_if_needed(now)
        summary: list[str] = []
        if inputs.extra.get("missing_marks"):
            summary.append(f"no usable quote for {inputs.extra['missing_marks']}: no decision this bar")
            decisions: tuple[TradeDecision, ...] = ()
        else:
            self.files.append("cycles.jsonl", inputs.to_record())
            decisions = decide(inputs.snapshot(), self.cfg)
        for d in decisions:
            summary.append(self._execute(inputs, d))
        self._status(self._status_line(inputs, equity, summary))
        if self._console():
            now_held = [(p, m) for p in self.broker.open_positions().values()
                        if (m := marks_for(p, quotes)) is not None]
            self.printer(self.console_view(now_held, equity))
        return self._until_next_bar(now, minutes)

    def _drain_events(self) -> None:
        """Trade updates the stream thread collected, into the ledger (written from this thread only)."""
        if self.events is None:
            return
        while self.events.events:
            e = self.events.events.pop(0)
            self.ledger.event("stream", f"{e.get('event')} {e.get('client_order_id')} {e.get('status')}")

    def _until_next_bar(self, now: dt.datetime, minutes: int) -> float:
        local = now.astimezone(NY)
        floor = local.replace(second=0, microsecond=0, minute=local.minute - local.minute % minutes)
        nxt = floor + dt.timedelta(minutes=minutes)
        return max(0.5, (nxt - local).total_seconds() + self.opts.bar_delay_s)

    # -- inputs -----------------------------------------------------------------------------
    def _inputs(self, now: dt.datetime, next_close: dt.datetime, minutes: int) -> tuple[CycleInputs, dict[str, Any]]:
        local = now.astimezone(NY)
        floor = local.replace(second=0, microsecond=0, minute=local.minute - local.minute % minutes)
        anchor = dt.datetime.combine(local.date() - dt.timedelta(days=self.opts.warmup_days), dt.time(), NY)
        bars = self.data.bars(anchor.astimezone(dt.UTC), floor.astimezone(dt.UTC), minutes)
        bars = bars[bars.index <= floor]
        if bars.empty:
            raise ValueError("no closed 5-minute bar yet")
        ts = bars.index[-1].to_pydatetime()
        day = ts.astimezone(NY).date()
        daily = self.data.daily(day - dt.timedelta(days=self.opts.daily_days), day)
        vix_daily = vix_proxy(daily)
        s = self.cfg.strategy
        held = [leg.contract.expiry for p in self.broker.open_positions().values() for leg in p.legs]
        hi = max([day + dt.timedelta(days=s.dte_max + 7), *held])
        rows = self.data.chain(day, hi)
        max_age = self.opts.kill.stale_after_s
        fresh = [r for r in rows if usable(r, now, max_age)]
        ages = [(now - r.quote_ts).total_seconds() for r in rows if r.quote_ts is not None]
        quote_age = min(ages) if ages else None
        slices = build_slices(fresh, day)
        spot = float(bars["close"].iloc[-1])
        iv = atm_iv(slices, spot, day)
        prev = vix_daily["vix"].to_numpy(float)
        vix_prev = float(prev[-2]) if len(prev) > 1 and daily.index[-1].date() == day else \
            (float(prev[-1]) if len(prev) else float("nan"))
        vix_intraday = np.full(len(bars), vix_prev)
        vix_intraday[-1] = iv * 100 if math.isfinite(iv) else vix_prev
        fs = self.features.compute(bars, daily, vix_daily, vix_intraday)
        row = fs.row(len(fs) - 1)
        feats = fs.values_at(len(fs) - 1)
        account = self.data.account()
        quotes = {r.symbol: r for r in fresh}
        positions = []
        missing = []
        for pos in self.broker.open_positions().values():
            m = marks_for(pos, quotes)
            if m is None:
                missing.append(pos.position_id)
            else:
                positions.append((pos, m))
        halted = self.ledger.get(f"halted:{day.isoformat()}") == "1"
        inputs = CycleInputs(ts, session_facts(ts, next_close, minutes), closed_bars(bars, minutes)[minutes],
                             closed_bars(bars, minutes), feats, row.mtf_reason, slices, positions, account["cash"],
                             account["last_equity"] if math.isfinite(account["last_equity"]) else account["equity"],
                             halted, self.cfg.strategy.underlying,
                             {"quote_age_s": quote_age, "buying_power": account["buying_power"],
                              "broker_equity": account["equity"], "atm_iv": iv if math.isfinite(iv) else None,
                              "missing_marks": missing, "clock": now.isoformat(),
                              "cycle_id": f"{self.run_id}#{self.cycles}"})
        return inputs, quotes

    # -- decisions -> orders --------------------------------------------------------------------
    def _execute(self, inputs: CycleInputs, d: TradeDecision) -> str:
        did = decision_id(inputs.ts, d)
        allowed = self.kill.allows(d) or d.action in (Action.HALT, Action.SKIP, Action.HOLD)
        rec = decision_json(inputs.ts, d, did)
        rec["kill_switch"] = self.kill.describe()
        rec["cycle_id"] = inputs.extra.get("cycle_id")
        rec["allowed"] = allowed
        self.files.append("decisions.jsonl", rec)
        if d.action is Action.HALT:
            self.ledger.set(f"halted:{inputs.session.session_date.isoformat()}", "1")
            return "HALT (daily drawdown stop)"
        if d.action in (Action.SKIP, Action.HOLD):
            return f"{d.action.name} {d.reasons[0] if d.reasons else ''}"[:80]
        if d.action is Action.HEDGE:
            return "HEDGE not sent (share hedges unsupported live)"
        if not allowed:
            return f"{d.action.name} blocked: kill switch {self.kill.describe()}"
        if d.action is Action.ROLL:  # close, and when that filled open the replacement (as the backtest driver)
            text = self._order(inputs, d, f"{did}-c", OrderIntent.CLOSE, rec)
            if not self.broker.open_positions().get(d.position_id) and not self.opts.dry_run:
                if self.kill.state is KillState.ACTIVE:
                    text += "; " + self._order(inputs, d, f"{did}-o", OrderIntent.OPEN, rec)
                else:
                    text += f"; replacement not opened: kill switch {self.kill.describe()}"
            return text
        return self._order(inputs, d, did, OrderIntent.OPEN if d.action is Action.ENTER else OrderIntent.CLOSE, rec)

    def _order(self, inputs: CycleInputs, d: TradeDecision, did: str, intent: OrderIntent, rec: dict[str, Any]
               ) -> str:
        prior = self.ledger.orders(did)
        if prior and all(o["status"] in ("filled", "canceled", "expired", "rejected", "unsent") for o in prior):
            return f"{d.action.name} {did} already done ({prior[-1]['status']})"
        if intent is OrderIntent.OPEN:
            req = OrderRequest(did, OrderIntent.OPEN, d.structure, d.qty, d.legs, limit=d.limit)
        else:
            req = OrderRequest(did, OrderIntent.CLOSE, d.structure, d.qty, position_id=d.position_id,
                               exit_reason=d.exit_reason)
        if not self.opts.dry_run:
            self.ledger.intent(did, inputs.ts, d.action.value, rec)
        before = len(self.ledger.orders(did))
        res = self.broker.submit(req)
        sent = len(self.ledger.orders(did)) - before
        if sent:
            self.kill.order_sent(sent)
        side = "enter" if intent is OrderIntent.OPEN else "exit"
        out: dict[str, Any] = {
            "ts": inputs.ts.isoformat(), "decision_id": did, "action": side, "decision": d.action.value,
            "status": res.status.value, "text": res.text, "dry_run": self.opts.dry_run,
            "orders": self.ledger.orders(did) if not self.opts.dry_run else self.broker.dry_orders[-4:],
            "mid_credit": None, "fill_credit": None}
        try:
            if req.legs:
                out["mid_credit"] = round(self.broker.prices(req.legs, 1, opening=True)[0], 4)
        except Exception:  # noqa: BLE001 -- the mid is for the report only
            pass
        if res.position is not None:
            out["fill_credit"] = res.position.credit
            out["position_id"] = res.position.position_id
        if res.trade is not None:
            out["fill_credit"] = -res.trade.exit_debit
            out["pnl"] = res.trade.pnl
        self.files.append("orders.jsonl", out)
        if self.opts.dry_run:
            return f"{d.action.name} dry-run: would send {did} ({len(self.broker.dry_orders)} order(s) logged)"
        word = "filled" if res.status is OrderStatus.FILLED else "not filled"
        return f"{d.action.name} {did} {word}: {res.text}"[:160]

    def _halt_if_needed(self, now: dt.datetime) -> None:
        if self.kill.state is not KillState.HALTED or self.halt_done:
            return
        self.halt_done = True
        canceled = 0
        known = {o["cid"] for o in self.ledger.orders()}
        try:
            from core.live.reconcile import open_broker_orders

            for o in open_broker_orders(self.clients.trading, self.retry):
                if o.get("client_order_id") in known:
                    try:
                        self.clients.trading.cancel_order_by_id(str(o["id"]))
                        canceled += 1
                    except Exception as exc:  # noqa: BLE001
                        self.ledger.event("halt", f"cancel {o.get('client_order_id')}: {error_text(exc)}")
        except Exception as exc:  # noqa: BLE001
            self.ledger.event("halt", f"could not list open orders: {error_text(exc)}")
        self.printer(f"KILL SWITCH HALTED ({self.kill.cause}: {self.kill.reason}); canceled {canceled} open order(s)")
        if self.opts.flatten_on_halt and not self.opts.dry_run:
            stamp = now.astimezone(NY).strftime("%Y%m%d-%H%M")
            for pid, pos in list(self.broker.open_positions().items()):
                from core.dto import ExitReason

                did = f"qm-{stamp}-flatten-{pid.removeprefix('qm-')}"
                res = self.broker.submit(OrderRequest(did, OrderIntent.CLOSE, pos.structure, pos.qty,
                                                      position_id=pid, exit_reason=ExitReason.DRAWDOWN_FLATTEN))
                self.printer(f"flatten {pid}: {res.status.value} {res.text}")

    # -- output -----------------------------------------------------------------------------
    def _status_line(self, inputs: CycleInputs, equity: float, summary: list[str]) -> str:
        sod = inputs.start_of_day_equity
        day = (equity / sod - 1) if sod > 0 else float("nan")
        stream = "" if self.events is None else \
            (" | stream up" if self.events.connected else " | stream DOWN (polling)")
        mode = "DRY-RUN " if self.opts.dry_run else ""
        return (f"{mode}{inputs.ts.astimezone(NY):%Y-%m-%d %H:%M} ET | {inputs.underlying} {inputs.bar.close:.2f} | "
                f"kill {self.kill.describe()} | positions {len(inputs.positions)} | equity {equity:,.2f} "
                f"({day:+.2%} today) | orders today {self.kill.orders_today}{stream} | "
                + ("; ".join(summary) if summary else "no decision"))

    def _status(self, line: str) -> None:
        self.last_status = line
        self.files.line("status.log", line)
        self.printer(line)

    def _console(self) -> bool:
        if self.opts.console is not None:
            return self.opts.console
        return sys.stdout.isatty() and not self.opts.once

    def console_view(self, positions: list[tuple[Position, LegMarks]], equity: float) -> str:
        """Positions after this cycle's orders with marks, P&L and Greeks; the kill-switch state."""
        lines = ["-" * 78, f"{'position':<34}{'qty':>4}{'credit':>8}{'mark':>8}{'P&L $':>10}{'delta':>8}{'theta':>8}"]
        total = np.zeros(2)
        for pos, m in positions:
            w = np.array(pos.signed_qty, float) * 100
            mark = -float(np.dot(pos.signed_qty, m.mid)) / pos.qty
            pnl = (pos.credit - mark) * 100 * pos.qty
            g = np.array([w @ m.delta, w @ m.theta])
            total += g
            lines.append(f"{pos.position_id[:33]:<34}{pos.qty:>4}{pos.credit:>8.2f}{mark:>8.2f}{pnl:>10.2f}"
                         f"{g[0]:>8.1f}{g[1]:>8.1f}")
        lines.append(f"book delta {total[0]:+.1f} theta {total[1]:+.1f} | equity {equity:,.2f} | "
                     f"kill switch {self.kill.describe()}")
        return "\n".join(lines)
