"""Order events: the trade-update stream (with our own reconnect backoff), REST polling as the
fallback, and account activities (assignment, exercise, expiry) into the ledger.

* ``TradeEvents`` runs alpaca-py's ``TradingStream`` in a daemon thread.  The subclass sets
  the reconnect delay (exponential with jitter between ``min_backoff`` and ``max_backoff``;
  Alpaca allows one trade-update connection per account, a tight loop only earns 429s),
  shortens the receive timeout (so ``stop`` is prompt), takes raw messages (a message the SDK
  model would reject -- e.g. an unknown status -- is still seen), and flags every
  (re)connection after the first: the loop then reconciles over REST, because missed events
  are never replayed.  Order updates wake ``AlpacaBroker``'s waits via ``OrderWatch``.
* While the stream is down the broker's waits simply poll ``GET /v2/orders/{id}``; nothing
  depends on an event arriving (a fill event that never comes is found by the poll).
* ``poll_activities`` reads ``/v2/account/activities`` for the non-trade option activities
  ``OPASN`` (assigned), ``OPEXC`` (exercised), ``OPEXP`` (expired) and the ``OPTRD`` share
  trades paired with them, records each once in the ledger, and returns the new ones;
  reconciliation then closes the affected positions (the broker no longer holds the legs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from core.broker.alpaca import OrderWatch
from core.broker.alpaca_http import RetryPolicy, call_read
from core.live.ledger import Ledger

ACTIVITY_TYPES = ("OPASN", "OPEXC", "OPEXP", "OPTRD")


def backoff_delay(retries: int, lo: float, hi: float) -> float:
    """Exponential backoff with equal jitter: in [d/2, d], d = min(hi, lo * 2**(retries-1))."""
    d = min(hi, lo * 2 ** max(0, retries - 1))
    return d / 2 + random.random() * d / 2


class TradeEvents:
    def __init__(self, key: str, secret: str, paper: bool, url: str | None, watch: OrderWatch,
                 min_backoff: float = 1.0, max_backoff: float = 30.0,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        from alpaca.trading.stream import TradingStream

        owner = self

        class _Stream(TradingStream):
            def _reconnect_delay(self, retries: int) -> float:
                d = backoff_delay(retries, owner.min_backoff, owner.max_backoff)
                owner.delays.append(d)
                return d

            async def _start_ws(self) -> None:
                await super()._start_ws()
                owner._connected()

            async def close(self) -> None:
                owner.connected = False
                await super().close()

            async def _consume(self) -> None:
                while True:
                    if not self._stop_stream_queue.empty():
                        self._stop_stream_queue.get(timeout=1)
                        await self.close()
                        break
                    try:
                        r = await asyncio.wait_for(self._ws.recv(), 0.5)  # type: ignore[attr-defined]
                    except TimeoutError:
                        continue
                    msg = json.loads(r)
                    if msg.get("stream") == "trade_updates":
                        self._data_received = True
                    await self._dispatch(msg)

        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.watch = watch
        self.on_event = on_event
        self.stream = _Stream(key, secret, paper=paper, raw_data=True, url_override=url)  # type: ignore[arg-type]
        self.stream.subscribe_trade_updates(self._handle)
        self.connects = 0
        self.connected = False
        self.reconnected = threading.Event()
        self.delays: list[float] = []
        self.events: list[dict[str, Any]] = []
        self.last_event = 0.0
        self._thread: threading.Thread | None = None

    def _connected(self) -> None:
        self.connects += 1
        self.connected = True
        if self.connects > 1:
            self.reconnected.set()  # the loop reconciles: events missed while down are not replayed

    async def _handle(self, msg: dict[str, Any]) -> None:
        data = msg.get("data") or {}
        order = data.get("order") or {}
        self.events.append({"event": data.get("event"), "client_order_id": order.get("client_order_id"),
                            "status": order.get("status")})
        self.last_event = time.monotonic()
        if order:
            self.watch.push(order)
        if self.on_event is not None:
            self.on_event(data)

    def start(self) -> TradeEvents:
        self._thread = threading.Thread(target=self.stream.run, name="trade-updates", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        loop = getattr(self.stream, "_loop", None)
        if loop is not None and loop.is_running():
            with contextlib.suppress(Exception):  # the thread is a daemon; stopping is best effort
                asyncio.run_coroutine_threadsafe(self.stream.stop_ws(), loop).result(timeout)
        if self._thread is not None:
            self._thread.join(timeout)


def poll_activities(trading: Any, ledger: Ledger, retry: RetryPolicy,
                    types: tuple[str, ...] = ACTIVITY_TYPES) -> list[dict[str, Any]]:
    """New option activities (assignment, exercise, expiry, their share trades) into the ledger."""
    rows = call_read(lambda: trading.get("/account/activities", {"activity_types": ",".join(types)}), retry,
                     "account activities")
    new = []
    for a in rows or []:
        if not isinstance(a, dict) or a.get("activity_type") not in types:
            continue
        act_id = str(a.get("id") or f"{a.get('activity_type')}:{a.get('symbol')}:{a.get('date')}")
        if ledger.activity(act_id, str(a.get("activity_type")), str(a.get("symbol", "")),
                           float(a.get("qty") or 0.0), str(a.get("date") or a.get("transaction_time") or ""), a):
            new.append(a)
            ledger.event("activity", f"{a.get('activity_type')} {a.get('symbol', '')} qty {a.get('qty')}")
    return new
