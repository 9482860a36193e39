"""The kill switch: ACTIVE -> REDUCING -> HALTED, persisted in the ledger.

* ACTIVE: every decision may be executed.
* REDUCING: no new entries; exits still go out.  Trips on the daily drawdown stop, the maximum
  number of orders per day, stale data (no fresh quote for ``stale_after_s``), an unexplained
  broker position at reconciliation.
* HALTED: nothing is sent; open orders are canceled and, with ``--flatten-on-halt``, open
  positions are closed.  Trips on broker errors beyond ``max_broker_errors`` in a row, a kill
  file, SIGTERM / SIGINT.

The state only moves up by itself.  REDUCING from a *daily* cause (drawdown, orders per day)
clears at the next session, REDUCING for stale data as soon as quotes are fresh again;
everything else -- and HALTED always -- stays until a person
clears it (``--reset-kill-switch``, or deleting the ledger's ``killswitch`` row).  The state
and its reason survive restarts: they are written to the ledger the moment they change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from core.dto import Action, TradeDecision
from core.live.ledger import Ledger

DAILY_CAUSES = frozenset({"drawdown", "orders_per_day"})


class KillState(IntEnum):
    ACTIVE = 0
    REDUCING = 1
    HALTED = 2


@dataclass(frozen=True)
class KillParams:
    max_orders_per_day: int = 40
    max_broker_errors: int = 8
    stale_after_s: float = 120.0
    max_daily_drawdown: float = 0.02
    kill_file: str | None = None


class KillSwitch:
    def __init__(self, ledger: Ledger, params: KillParams) -> None:
        self.ledger = ledger
        self.params = params
        raw = ledger.get("killswitch")
        data = json.loads(raw) if raw else {}
        self.state = KillState[data.get("state", "ACTIVE")]
        self.cause = str(data.get("cause", ""))
        self.reason = str(data.get("reason", ""))
        self.day = str(data.get("day", ""))
        self.broker_errors = 0
        self.orders_today = int(data.get("orders_today", 0))
        self.signalled = ""

    def _save(self) -> None:
        self.ledger.set("killswitch", json.dumps({"state": self.state.name, "cause": self.cause,
                                                  "reason": self.reason, "day": self.day,
                                                  "orders_today": self.orders_today}))

    def trip(self, state: KillState, cause: str, reason: str) -> bool:
        """Move up to ``state``; True when the state changed."""
        if state <= self.state:
            return False
        self.state, self.cause, self.reason = state, cause, reason
        self._save()
        self.ledger.event("killswitch", f"{state.name}: {cause}: {reason}")
        return True

    def reset(self) -> None:
        self.state, self.cause, self.reason = KillState.ACTIVE, "", ""
        self._save()
        self.ledger.event("killswitch", "ACTIVE: reset by the operator")

    def new_day(self, day: dt.date) -> None:
        if self.day == day.isoformat():
            return
        self.day = day.isoformat()
        self.orders_today = 0
        if self.state is KillState.REDUCING and self.cause in DAILY_CAUSES:
            self.state, self.cause, self.reason = KillState.ACTIVE, "", ""
            self.ledger.event("killswitch", f"ACTIVE: new session {day}")
        self._save()

    # -- inputs -----------------------------------------------------------------------------
    def broker_error(self, exc: BaseException) -> None:
        self.broker_errors += 1
        if self.broker_errors >= self.params.max_broker_errors:
            self.trip(KillState.HALTED, "broker_errors", f"{self.broker_errors} broker errors in a row; last: "
                                                         f"{type(exc).__name__}")

    def broker_ok(self) -> None:
        self.broker_errors = 0

    def order_sent(self, n: int = 1) -> None:
        self.orders_today += n
        self._save()
        if self.orders_today >= self.params.max_orders_per_day:
            self.trip(KillState.REDUCING, "orders_per_day", f"{self.orders_today} orders today "
                                                           f"(max {self.params.max_orders_per_day})")

    def check(self, equity: float, start_of_day_equity: float, quote_age_s: float | None) -> None:
        p = self.params
        if self.signalled:
            self.trip(KillState.HALTED, "signal", self.signalled)
        if p.kill_file and Path(p.kill_file).exists():
            self.trip(KillState.HALTED, "kill_file", f"kill file {p.kill_file} present")
        if start_of_day_equity > 0 and equity < start_of_day_equity * (1 - p.max_daily_drawdown):
            dd = 1 - equity / start_of_day_equity
            self.trip(KillState.REDUCING, "drawdown", f"daily drawdown {dd:.2%} >= {p.max_daily_drawdown:.2%}")
        fresh = quote_age_s is not None and quote_age_s <= p.stale_after_s
        if fresh and self.state is KillState.REDUCING and self.cause == "stale_data":
            self.state, self.cause, self.reason = KillState.ACTIVE, "", ""
            self._save()
            self.ledger.event("killswitch", "ACTIVE: quotes fresh again")
        if not fresh:
            age = "no fresh quote" if quote_age_s is None else f"freshest quote {quote_age_s:.0f}s old"
            self.trip(KillState.REDUCING, "stale_data", f"{age} (limit {p.stale_after_s:.0f}s)")

    def allows(self, d: TradeDecision) -> bool:
        if self.state is KillState.HALTED:
            return False
        if self.state is KillState.REDUCING:
            return d.action is Action.EXIT
        return True

    def describe(self) -> str:
        return self.state.name if self.state is KillState.ACTIVE else f"{self.state.name} ({self.cause})"
