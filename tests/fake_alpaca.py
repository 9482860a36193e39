"""A fake Alpaca (trading REST, stock/option market data, trade-update websocket) for the live tests.

An aiohttp app on 127.0.0.1 (a random port) in a background thread, speaking the routes and
fields of ../shared/ALPACA.md so the real alpaca-py clients talk to it unchanged.  Faults are
injected per route: ``fault("POST", "/v2/orders", status=429, retry_after=0)``,
``status=504``, ``hang=2.0`` (the request is processed -- an order is accepted -- and then the
answer is held past the client's timeout), ``drop_streams()``, ``partial=1`` (the next
multi-leg order fills only part of its quantity), ``reject_403=True``, ``suppress_events`` (a
fill whose stream event never arrives), ``clock_open=False`` (market closed).

Fills: an open multi-leg limit order fills when the credit it asks for (``-limit_price``) is at
most the combo's mid credit minus ``fill_edge`` (closing debits symmetric), ``fill_delay``
seconds after it is accepted.  Every order the server created is in ``orders`` (the tests
count duplicates there); every request is in ``requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

UTC = dt.UTC
FINAL = {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"}


def occ(underlying: str, expiry: dt.date, right: str, strike: float) -> str:
    return f"{underlying}{expiry:%y%m%d}{right}{int(round(strike * 1000)):08d}"


def iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    method: str
    path: str
    status: int = 0
    retry_after: float | None = None
    hang: float = 0.0
    times: int = 1
    body: str | None = None


@dataclass
class Quote:
    bid: float
    ask: float
    delta: float
    gamma: float = 0.01
    theta: float = -0.02
    vega: float = 0.1
    iv: float = 0.18
    ts: dt.datetime | None = None

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


@dataclass
class FakeState:
    now: dt.datetime
    cash: float = 100_000.0
    last_equity: float = 100_000.0
    clock_open: bool = True
    next_close: dt.datetime | None = None
    quotes: dict[str, Quote] = field(default_factory=dict)
    open_interest: float = 1000.0
    bars: list[dict[str, Any]] = field(default_factory=list)  # 5-minute bars, label = bar start (Alpaca)
    daily: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_client: dict[str, str] = field(default_factory=dict)
    positions: dict[str, dict[str, float]] = field(default_factory=dict)  # symbol -> qty, avg
    activities: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    fill_edge: float = 0.0
    fill_delay: float = 0.02
    partial: int = 0
    reject_403: bool = False
    suppress_events: bool = False
    fill_orders: bool = True
    fills_left: int | None = None  # None: unlimited; else how many more orders may fill
    stream_connects: int = 0
    duplicate_posts: int = 0  # POSTs that reused a client id (the client re-sent an order)
    events_sent: int = 0


class FakeAlpaca:
    def __init__(self, key: str = "PKTESTKEY123", secret: str = "s3cr3t-TEST-secret", *,
                 now: dt.datetime | None = None) -> None:
        self.key, self.secret = key, secret
        self.state = FakeState(now or dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
        self.lock = threading.RLock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.sockets: list[web.WebSocketResponse] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAlpaca:
        self._thread = threading.Thread(target=self._serve, name="fake-alpaca", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Alpaca did not start")
        return self

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/v2/account", self.account)
        r.add_get("/v2/positions", self.get_positions)
        r.add_post("/v2/orders", self.post_order)
        r.add_get("/v2/orders", self.list_orders)
        r.add_get("/v2/orders:by_client_order_id", self.order_by_client)
        r.add_get("/v2/orders/{oid}", self.get_order)
        r.add_delete("/v2/orders/{oid}", self.cancel_order)
        r.add_get("/v2/clock", self.clock)
        r.add_get("/v2/calendar", self.calendar)
        r.add_get("/v2/options/contracts", self.contracts)
        r.add_get("/v2/account/activities", self.activities)
        r.add_get("/v2/stocks/bars", self.stock_bars)
        r.add_get("/v1beta1/options/snapshots/{underlying}", self.chain)
        r.add_get("/stream", self.stream)
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    # -- test controls -------------------------------------------------------------------
    def fault(self, method: str, path: str, status: int = 0, retry_after: float | None = None, hang: float = 0.0,
              times: int = 1, body: str | None = None) -> None:
        with self.lock:
            self.state.faults.append(Fault(method, path, status, retry_after, hang, times, body))

    def drop_streams(self) -> None:
        assert self.loop is not None

        async def close_all() -> None:
            for ws in list(self.sockets):
                await ws.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(5)

    def created_orders(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.state.orders.values())

    def broker_positions(self) -> dict[str, int]:
        with self.lock:
            return {s: int(p["qty"]) for s, p in self.state.positions.items() if int(p["qty"]) != 0}

    def duplicates(self) -> list[str]:
        """Problems of the session: a reused client id, or two filled orders for one decision."""
        with self.lock:
            out = [f"{self.state.duplicate_posts} POST(s) reused a client_order_id"] if self.state.duplicate_posts \
                else []
            filled: dict[str, int] = {}
            wanted: dict[str, int] = {}
            for o in self.state.orders.values():
                fam = o["client_order_id"].rsplit("-", 1)[0]
                filled[fam] = filled.get(fam, 0) + int(o["filled_qty"])
                wanted.setdefault(fam, int(o["qty"]))  # step 0 asks for the decision's whole quantity
        return out + [f"{fam}: {n} units filled for {wanted[fam]} wanted" for fam, n in filled.items()
                      if n > wanted[fam]]

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.state.requests if m == method and p == path)

    # -- helpers -------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        authorized = (request.headers.get("APCA-API-KEY-ID") == self.key
                      and request.headers.get("APCA-API-SECRET-KEY") == self.secret)
        if request.path != "/stream" and not authorized:
            return web.json_response({"message": "unauthorized."}, status=401)
        body = ""
        if request.method == "POST":
            body = await request.text()
        with self.lock:
            self.state.requests.append((request.method, request.path, body))
            fault = None
            for f in self.state.faults:
                if f.method == request.method and request.path.startswith(f.path) and f.times > 0:
                    f.times -= 1
                    fault = f
                    break
        if fault is not None and fault.hang:
            response = await handler(request)  # processed (an order is accepted), then the answer hangs
            await asyncio.sleep(fault.hang)
            return response
        if fault is not None and fault.status:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 504 and request.method == "POST" and fault.body == "after":
                await handler(request)  # the gateway timed out after the order was placed
            if fault.status >= 500:
                return web.Response(status=fault.status, text="<html>gateway error</html>", headers=headers,
                                    content_type="text/html")
            return web.json_response({"code": 42910000, "message": "rate limit exceeded"}, status=fault.status,
                                     headers=headers)
        return await handler(request)

    def _order_json(self, o: dict[str, Any]) -> dict[str, Any]:
        return o

    # -- REST ----------------------------------------------------------------------------
    async def account(self, request: web.Request) -> web.Response:
        with self.lock:
            s = self.state
            equity = s.cash + sum(p["qty"] * 100 * self._mid(sym) for sym, p in s.positions.items())
            return web.json_response({
                "id": "6b6b2a3c-1111-4222-8333-444455556666", "account_number": "PA0000TEST", "status": "ACTIVE",
                "currency": "USD", "cash": f"{s.cash:.2f}", "equity": f"{equity:.2f}",
                "last_equity": f"{s.last_equity:.2f}", "buying_power": f"{s.cash:.2f}",
                "options_buying_power": f"{s.cash:.2f}", "options_trading_level": 3,
                "portfolio_value": f"{equity:.2f}"})

    def _mid(self, symbol: str) -> float:
        q = self.state.quotes.get(symbol)
        return q.mid if q else 0.0

    async def get_positions(self, request: web.Request) -> web.Response:
        out = []
        with self.lock:
            for sym, p in self.state.positions.items():
                if int(p["qty"]) == 0:
                    continue
                qty = int(p["qty"])
                out.append({"asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, sym)), "symbol": sym, "exchange": "",
                            "asset_class": "us_option", "avg_entry_price": f"{p['avg']:.4f}", "qty": str(qty),
                            "side": "long" if qty > 0 else "short", "cost_basis": f"{qty * p['avg'] * 100:.2f}",
                            "qty_available": str(qty)})
        return web.json_response(out)

    async def post_order(self, request: web.Request) -> web.Response:
        data = await request.json()
        with self.lock:
            s = self.state
            cid = data.get("client_order_id") or str(uuid.uuid4())
            if cid in s.by_client:
                s.duplicate_posts += 1
                return web.json_response({"code": 40010001, "message": "client_order_id must be unique"}, status=422)
            if s.reject_403:
                return web.json_response({"code": 40310000, "message": "insufficient options buying power"},
                                         status=403)
            simple = bool(data.get("symbol")) and not data.get("legs")
            legs = data.get("legs") or ([{"symbol": data["symbol"], "side": data["side"], "ratio_qty": 1,
                                          "position_intent": data.get("position_intent")}] if simple else [])
            if data.get("time_in_force") != "day" or (not simple and (data.get("order_class") != "mleg"
                                                                        or not 2 <= len(legs) <= 4)):
                return web.json_response({"code": 42210000, "message": "invalid mleg order"}, status=422)
            qty = float(data["qty"])
            if qty != int(qty):
                return web.json_response({"code": 42210000, "message": "qty must be whole"}, status=422)
            now = iso(s.now)
            oid = str(uuid.uuid4())
            order = {
                "id": oid, "client_order_id": cid, "created_at": now, "updated_at": now, "submitted_at": now,
                "filled_at": None, "canceled_at": None, "asset_id": None, "symbol": "", "asset_class": "",
                "qty": str(int(qty)), "filled_qty": "0", "filled_avg_price": None,
                "order_class": "simple" if simple else "mleg", "order_type": "limit", "type": "limit",
                "side": data["side"] if simple else "", "time_in_force": "day",
                "_credit_limit": (float(data["limit_price"]) * (1 if data.get("side") == "sell" else -1)) if simple
                else -float(data["limit_price"]),
                "limit_price": str(data.get("limit_price")), "status": "new", "extended_hours": False,
                "legs": [{"id": str(uuid.uuid4()), "client_order_id": str(uuid.uuid4()), "created_at": now,
                          "updated_at": now, "submitted_at": now, "symbol": leg["symbol"], "asset_class": "us_option",
                          "side": leg["side"], "position_intent": leg.get("position_intent"),
                          "ratio_qty": str(int(float(leg["ratio_qty"]))),
                          "qty": str(int(qty * float(leg["ratio_qty"]))), "filled_qty": "0", "order_class": "mleg",
                          "type": "limit", "order_type": "limit", "time_in_force": "day", "status": "new",
                          "extended_hours": False} for leg in legs],
            }
            if simple:
                order["symbol"], order["asset_class"] = data["symbol"], "us_option"
                order["_legs"], order["legs"] = order["legs"], None
            else:
                order["_legs"] = order["legs"]
            s.orders[oid] = order
            s.by_client[cid] = oid
            fillable = s.fill_orders and self._fillable(order) and (s.fills_left is None or s.fills_left > 0)
            if fillable and s.fills_left is not None:
                s.fills_left -= 1
            partial = 0
            if fillable and s.partial:
                partial, s.partial = s.partial, 0
        self._emit("new", order)
        if fillable and self.loop is not None:
            self.loop.call_later(s.fill_delay, self._fill, oid, partial)
        return web.json_response(order)

    def _combo_mid(self, order: dict[str, Any]) -> float:
        """Net price per unit at mid: positive = the order receives a credit."""
        total = 0.0
        for leg in order["_legs"]:
            sign = 1.0 if leg["side"] == "sell" else -1.0
            total += sign * int(leg["ratio_qty"]) * self._mid(leg["symbol"])
        return total

    def _fillable(self, order: dict[str, Any]) -> bool:
        credit_mid = self._combo_mid(order)
        return order["_credit_limit"] <= credit_mid - self.state.fill_edge + 1e-9

    def _fill(self, oid: str, partial: int = 0) -> None:
        with self.lock:
            s = self.state
            o = s.orders[oid]
            if o["status"] in FINAL:
                return
            qty = int(o["qty"])
            fill = partial if 0 < partial < qty else qty - int(o["filled_qty"])
            price = float(o["_credit_limit"])  # credit per unit at the limit
            adjust = price - self._combo_mid(o)  # given up against mid, charged to the first leg
            for j, leg in enumerate(o["_legs"]):
                sym = leg["symbol"]
                n = fill * int(leg["ratio_qty"])
                signed = n if leg["side"] == "buy" else -n
                p = s.positions.setdefault(sym, {"qty": 0.0, "avg": 0.0})
                q0 = p["qty"]
                px = self._mid(sym)
                if j == 0:
                    ratio = int(leg["ratio_qty"])
                    px = px + adjust / ratio if leg["side"] == "sell" else px - adjust / ratio
                if q0 == 0 or (q0 > 0) == (signed > 0):
                    p["avg"] = (abs(q0) * p["avg"] + abs(signed) * px) / (abs(q0) + abs(signed))
                p["qty"] = q0 + signed
                leg["filled_qty"] = str(int(leg["filled_qty"]) + n)
                leg["filled_avg_price"] = f"{px:.4f}"
                leg["status"] = "filled" if int(leg["filled_qty"]) >= int(leg["qty"]) else "partially_filled"
            s.cash += price * fill * 100
            o["filled_qty"] = str(int(o["filled_qty"]) + fill)
            o["filled_avg_price"] = f"{abs(price):.2f}" if o["order_class"] == "simple" else f"{-price:.2f}"
            o["status"] = "filled" if int(o["filled_qty"]) >= qty else "partially_filled"
            o["updated_at"] = iso(s.now)
            if o["status"] == "filled":
                o["filled_at"] = iso(s.now)
            event = "fill" if o["status"] == "filled" else "partial_fill"
            extra = {"execution_id": str(uuid.uuid4()), "price": f"{-price:.2f}", "qty": str(fill),
                     "position_qty": o["filled_qty"]}
        self._emit(event, o, extra)

    def fill_now(self, client_order_id: str, qty: int = 0) -> None:
        """Fill a resting order (the rest of it, or ``qty`` units) at its limit now."""
        with self.lock:
            oid = self.state.by_client[client_order_id]
        self._fill(oid, qty)

    def _emit(self, event: str, order: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        if self.state.suppress_events or self.loop is None:
            return
        msg = {"stream": "trade_updates", "data": {"event": event, "order": json.loads(json.dumps(order)),
                                                   "timestamp": iso(self.state.now), **(extra or {})}}
        text = json.dumps(msg)

        async def send() -> None:
            for ws in list(self.sockets):
                if not ws.closed:
                    try:
                        await ws.send_str(text)
                        self.state.events_sent += 1
                    except ConnectionError:
                        pass
        if threading.current_thread() is self._thread:
            self.loop.create_task(send())
        else:
            asyncio.run_coroutine_threadsafe(send(), self.loop)

    async def list_orders(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "open")
        with self.lock:
            out = [o for o in self.state.orders.values()
                   if status == "all" or (status == "open") == (o["status"] not in FINAL)]
        return web.json_response(out)

    async def order_by_client(self, request: web.Request) -> web.Response:
        cid = request.query.get("client_order_id", "")
        with self.lock:
            oid = self.state.by_client.get(cid)
            if oid is None:
                return web.json_response({"code": 40410000, "message": "order not found"}, status=404)
            return web.json_response(self.state.orders[oid])

    async def get_order(self, request: web.Request) -> web.Response:
        with self.lock:
            o = self.state.orders.get(request.match_info["oid"])
        if o is None:
            return web.json_response({"code": 40410000, "message": "order not found"}, status=404)
        return web.json_response(o)

    async def cancel_order(self, request: web.Request) -> web.Response:
        with self.lock:
            o = self.state.orders.get(request.match_info["oid"])
            if o is None:
                return web.json_response({"code": 40410000, "message": "order not found"}, status=404)
            if o["status"] in FINAL:
                return web.json_response({"code": 42210000, "message": f"order is {o['status']}"}, status=422)
            o["status"] = "canceled"
            o["canceled_at"] = o["updated_at"] = iso(self.state.now)
        self._emit("canceled", o)
        return web.Response(status=204)

    async def clock(self, request: web.Request) -> web.Response:
        with self.lock:
            s = self.state
            close = s.next_close or s.now.replace(hour=21, minute=0, second=0, microsecond=0)
            nxt = (s.now + dt.timedelta(days=1)).replace(hour=14, minute=30, second=0, microsecond=0)
            return web.json_response({"timestamp": iso(s.now), "is_open": s.clock_open, "next_open": iso(nxt),
                                      "next_close": iso(close)})

    async def calendar(self, request: web.Request) -> web.Response:
        d = self.state.now.date()
        return web.json_response([{"date": d.isoformat(), "open": "09:30", "close": "16:00"}])

    async def contracts(self, request: web.Request) -> web.Response:
        under = request.query.get("underlying_symbols", "SPY")
        out = []
        with self.lock:
            for sym in sorted(self.state.quotes):
                if not sym.startswith(under):
                    continue
                rest = sym[len(under):]
                exp = dt.datetime.strptime(rest[:6], "%y%m%d").date()
                right, strike = rest[6], int(rest[7:]) / 1000
                out.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, sym)), "symbol": sym, "name": sym,
                            "status": "active", "tradable": True, "expiration_date": exp.isoformat(),
                            "root_symbol": under, "underlying_symbol": under,
                            "underlying_asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, under)),
                            "type": "call" if right == "C" else "put", "style": "american",
                            "strike_price": str(strike), "size": "100",
                            "open_interest": str(int(self.state.open_interest)),
                            "open_interest_date": self.state.now.date().isoformat()})
        return web.json_response({"option_contracts": out, "next_page_token": None})

    async def activities(self, request: web.Request) -> web.Response:
        with self.lock:
            return web.json_response(list(self.state.activities))

    async def stock_bars(self, request: web.Request) -> web.Response:
        tf = request.query.get("timeframe", "5Min")
        start = request.query.get("start")
        end = request.query.get("end")
        with self.lock:
            rows = self.state.daily if tf in ("1Day", "1D") else self.state.bars
            out = []
            for b in rows:
                if start and b["t"] < start.replace("Z", "")[:19]:
                    continue
                if end and b["t"] > end.replace("Z", "")[:19]:
                    continue
                out.append({**b, "t": b["t"] + "Z"})
        return web.json_response({"bars": {"SPY": out}, "next_page_token": None})

    async def chain(self, request: web.Request) -> web.Response:
        under = request.match_info["underlying"]
        snaps = {}
        with self.lock:
            for sym, q in self.state.quotes.items():
                if not sym.startswith(under):
                    continue
                t = iso(q.ts or self.state.now)
                snaps[sym] = {"latestQuote": {"t": t, "bp": q.bid, "bs": 10, "ap": q.ask, "as": 10, "bx": "A",
                                              "ax": "A", "c": "A"},
                              "latestTrade": {"t": t, "p": q.mid, "s": 1, "x": "A", "c": ["I"], "i": 1, "z": "A"},
                              "impliedVolatility": q.iv,
                              "greeks": {"delta": q.delta, "gamma": q.gamma, "rho": 0.01, "theta": q.theta,
                                         "vega": q.vega}}
        return web.json_response({"snapshots": snaps, "next_page_token": None})

    # -- the trade-update stream ---------------------------------------------------------
    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        authed = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            action = data.get("action")
            if action == "authenticate":
                d = data.get("data", {})
                authed = d.get("key_id") == self.key and d.get("secret_key") == self.secret
                await ws.send_str(json.dumps({"stream": "authorization", "data": {
                    "status": "authorized" if authed else "unauthorized", "action": "authenticate"}}))
                if not authed:
                    break
            elif action == "listen" and authed:
                with self.lock:
                    self.state.stream_connects += 1
                self.sockets.append(ws)
                await ws.send_str(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}))
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws


def condor_market(fake: FakeAlpaca, spot: float = 500.0, expiry: dt.date | None = None,
                  strikes: range | None = None) -> dict[str, str]:
    """Quotes for one expiry of SPY calls and puts around ``spot`` with a simple smile (tests)."""
    import math

    s = fake.state
    expiry = expiry or (s.now.date() + dt.timedelta(days=35))
    strikes = strikes or range(int(spot) - 60, int(spot) + 61, 5)
    tau = max((expiry - s.now.date()).days, 1) / 365.0
    vol = 0.18
    for k in strikes:
        m = math.log(k / spot) / (vol * math.sqrt(tau))
        nd = 0.5 * (1 + math.erf((-m + 0.5 * vol * math.sqrt(tau)) / math.sqrt(2)))
        call_delta = nd
        put_delta = nd - 1
        call_px = max(0.05, spot * vol * math.sqrt(tau) * 0.4 * math.exp(-0.5 * m * m) + max(spot - k, 0) * 0.9)
        put_px = max(0.05, spot * vol * math.sqrt(tau) * 0.4 * math.exp(-0.5 * m * m) + max(k - spot, 0) * 0.9)
        for right, px, delta in (("C", call_px, call_delta), ("P", put_px, put_delta)):
            half = max(0.02, round(px * 0.02, 2))
            s.quotes[occ("SPY", expiry, right, k)] = Quote(round(px - half, 2), round(px + half, 2), delta,
                                                           iv=vol)
    return {"expiry": expiry.isoformat()}


# -- helpers the live tests share (this is a support module, not a test module) -------------------
def condor_legs(expiry: dt.date, strikes: tuple[float, float, float, float] = (460, 470, 530, 540)) -> tuple:
    """One unit of an iron condor on SPY (long put, short put, short call, long call)."""
    from core.dto import Leg, LegRole, OptionContract, OptionRight, Side

    lp, sp, sc, lc = strikes

    def leg(role: LegRole, strike: float, right: OptionRight, side: Side) -> Leg:
        return Leg(role, OptionContract("SPY", expiry, strike, right), side, 1, 0.0)
    return (leg(LegRole.LONG_PUT, lp, OptionRight.PUT, Side.LONG),
            leg(LegRole.SHORT_PUT, sp, OptionRight.PUT, Side.SHORT),
            leg(LegRole.SHORT_CALL, sc, OptionRight.CALL, Side.SHORT),
            leg(LegRole.LONG_CALL, lc, OptionRight.CALL, Side.LONG))


def make_broker(fake: FakeAlpaca, ledger: Any, trading: Any = None, **walk: Any) -> Any:
    """An AlpacaBroker on the fake with test-sized timeouts (0.5 s) and waits."""
    from core.broker.alpaca import AlpacaBroker, WalkParams
    from core.broker.alpaca_http import RetryPolicy
    from core.live.clients import Credentials, RateLimiter, endpoints, make_clients

    clients = make_clients(Credentials(fake.key, fake.secret), endpoints(True, fake.url, fake.url), timeout=0.5,
                           limiter=RateLimiter(6000, burst=100))
    params = {"edge": 0.05, "step": 0.05, "max_steps": 4, "wait_s": 0.3, "poll_s": 0.05, **walk}
    broker = AlpacaBroker(trading or clients.trading, ledger, WalkParams(**params),
                          read_retry=RetryPolicy(attempts=4, base=0.01, cap=0.05))
    broker.set_market(fake.state.now, {s: (q.bid, q.ask) for s, q in fake.state.quotes.items()}, 100_000.0,
                      100_000.0)
    broker.restore(ledger.open_positions())
    return broker


def seed_bars(fake: FakeAlpaca, spot: float = 500.0, days: int = 14, daily_days: int = 420, seed: int = 5) -> None:
    """5-minute bars (labelled by their start, as Alpaca does) for ``days`` sessions up to the fake's
    now, and daily bars for ``daily_days`` sessions before; a seeded random walk ending near ``spot``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    s = fake.state
    ny = "America/New_York"
    now_ny = pd.Timestamp(s.now).tz_convert(ny)
    sessions = pd.bdate_range(end=now_ny.normalize().tz_localize(None), periods=days)
    bars = []
    px = spot * 0.99
    for d in sessions:
        start = pd.Timestamp(d).tz_localize(ny) + pd.Timedelta(hours=9, minutes=30)
        for k in range(78):
            t0 = start + pd.Timedelta(minutes=5 * k)
            if t0 + pd.Timedelta(minutes=5) > now_ny:
                break
            o = px
            px = px * (1 + rng.normal(0, 0.0008))
            hi, lo = max(o, px) * 1.0004, min(o, px) * 0.9996
            bars.append({"t": t0.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S"), "o": round(o, 2),
                         "h": round(hi, 2), "l": round(lo, 2), "c": round(px, 2), "v": 100000 + k, "n": 50,
                         "vw": round((o + px) / 2, 2)})
    s.bars = bars
    frame = pd.DataFrame(bars)
    frame["day"] = [pd.Timestamp(t).tz_localize("UTC").tz_convert(ny).date() for t in frame["t"]]
    intraday = {d: (g["o"].iloc[0], g["h"].max(), g["l"].min(), g["c"].iloc[-1]) for d, g in frame.groupby("day")}
    daily_sessions = pd.bdate_range(end=now_ny.normalize().tz_localize(None), periods=daily_days)
    earlier = [d for d in daily_sessions if d.date() not in intraday]
    closes = [bars[0]["o"]]
    for _ in earlier[1:]:
        closes.append(closes[-1] / (1 + rng.normal(0.0003, 0.008)))
    closes = closes[::-1]
    daily = []
    for d in daily_sessions:
        if d.date() in intraday:
            o, h, lo, c = intraday[d.date()]
        else:
            c = closes[earlier.index(d)]
            o = c * (1 + rng.normal(0, 0.003))
            h, lo = max(o, c) * 1.003, min(o, c) * 0.997
        daily.append({"t": (pd.Timestamp(d) + pd.Timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S"),
                      "o": round(o, 2), "h": round(h, 2), "l": round(lo, 2), "c": round(c, 2), "v": 80_000_000,
                      "n": 1000, "vw": None})
    s.daily = daily


def advance(fake: FakeAlpaca, minutes: int = 5, move: float = 0.0) -> None:
    """Move the fake's clock by ``minutes``, adding the 5-minute bars that closed meanwhile; ``move``
    shifts the last price by that fraction over the period."""
    with fake.lock:
        s = fake.state
        for _ in range(minutes // 5):
            last = s.bars[-1]
            t0 = dt.datetime.fromisoformat(last["t"]).replace(tzinfo=UTC) + dt.timedelta(minutes=5)
            o = last["c"]
            c = round(o * (1 + move / max(1, minutes // 5)), 2)
            s.bars.append({"t": t0.strftime("%Y-%m-%dT%H:%M:%S"), "o": o, "h": max(o, c), "l": min(o, c), "c": c,
                           "v": 100000, "n": 50, "vw": None})
        s.now = s.now + dt.timedelta(minutes=minutes)
        for q in s.quotes.values():
            q.ts = s.now


def scale_quotes(fake: FakeAlpaca, factor: float) -> None:
    """Every option quote's bid/ask times ``factor`` (time decay / a vol crush in one step)."""
    with fake.lock:
        for q in fake.state.quotes.values():
            q.bid = round(q.bid * factor, 2)
            q.ask = max(round(q.ask * factor, 2), q.bid + 0.01)
