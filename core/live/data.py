"""Alpaca market data -> the same ``MarketSnapshot`` the backtest builds, and its recording.

Per decision bar the loop fetches (all reads, retried with backoff):

* stock bars (5-minute, relabelled from Alpaca's bar *start* to the bar *close*, New York
  time) from an anchor ``warmup_days`` before the session -- the features' history -- up to
  the bar that just closed; daily bars for IV rank and regime;
* the option chain snapshots (quotes with Greeks and IV) of the expiries the strategy can
  trade and the positions hold, and the option contracts (listing, open interest);
* the account (cash, equity, last equity = start-of-day equity, buying power).

Features: ``RollingFeatures`` runs the batch pipeline (``intelligence.pipeline.feature_arrays``)
over the window ``[anchor, now]`` and reads the last row.  Every feature is causal, so the
value equals the batch value at the same bar over the same history (``test_live_features``).
VIX is not an Alpaca symbol: the daily series is a realized-volatility proxy
(flagged ``is_proxy``) and the bar's ``vix`` the chain's ATM implied volatility x 100.

``CycleInputs`` is everything ``decide`` reads, JSON-serialisable: it is written to
``cycles.jsonl`` before deciding, and ``snapshot_from_record`` rebuilds the identical
snapshot for replay.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.backtest.snapshot import HIGHER_TIMEFRAMES, SnapshotBuilder
from core.broker.alpaca_http import RetryPolicy, call_read
from core.config import AppConfig
from core.dto import (
    FEATURE_NAMES,
    Bar,
    Book,
    BookPosition,
    DataError,
    ExpirySlice,
    FeatureSet,
    LegMarks,
    MarketSnapshot,
    Position,
    SessionFacts,
    StaticChain,
)

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
ARRAY_NAMES = ("call_bid", "call_ask", "call_iv", "call_delta", "call_gamma", "call_theta", "call_vega",
               "call_volume", "call_oi", "put_bid", "put_ask", "put_iv", "put_delta", "put_gamma", "put_theta",
               "put_vega", "put_volume", "put_oi")


@dataclass(frozen=True)
class OptionRow:
    symbol: str
    expiry: dt.date
    strike: float
    right: str  # "C" / "P"
    bid: float
    ask: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    quote_ts: dt.datetime | None
    open_interest: float = 0.0
    volume: float = 0.0


def parse_occ(symbol: str) -> tuple[str, dt.date, str, float]:
    tail = symbol[-15:]
    return symbol[:-15], dt.date(2000 + int(tail[:2]), int(tail[2:4]), int(tail[4:6])), tail[6], int(tail[7:]) / 1000


# -- fetching ---------------------------------------------------------------------------------
class LiveData:
    """Reads from Alpaca through the guarded clients (timeouts, rate limit, read retries)."""

    def __init__(self, clients: Any, underlying: str, retry: RetryPolicy,
                 on_error: Any = None) -> None:
        self.c = clients
        self.underlying = underlying
        self.retry = retry
        self.on_error = on_error

    def _read(self, fn: Any, what: str) -> Any:
        return call_read(fn, self.retry, what, self.on_error)

    def clock(self) -> dict[str, Any]:
        c = self._read(self.c.trading.get_clock, "clock")
        return {"timestamp": c.timestamp, "is_open": bool(c.is_open), "next_open": c.next_open,
                "next_close": c.next_close}

    def account(self) -> dict[str, float]:
        a = self._read(self.c.trading.get_account, "account")

        def f(x: Any) -> float:
            try:
                return float(x)
            except (TypeError, ValueError):
                return float("nan")
        bp = f(a.options_buying_power) if a.options_buying_power is not None else f(a.buying_power)
        return {"cash": f(a.cash), "equity": f(a.equity), "last_equity": f(a.last_equity), "buying_power": bp}

    def bars(self, start: dt.datetime, end: dt.datetime, minutes: int = 5) -> pd.DataFrame:
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        req = StockBarsRequest(symbol_or_symbols=self.underlying, timeframe=TimeFrame(minutes, TimeFrameUnit.Minute),
                               start=start, end=end)
        data = self._read(lambda: self.c.stock.get_stock_bars(req), "stock bars")
        rows = data.data.get(self.underlying, []) if hasattr(data, "data") else []
        if not rows:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"],
                                index=pd.DatetimeIndex([], tz=NY))
        idx = pd.DatetimeIndex([pd.Timestamp(b.timestamp) for b in rows])
        idx = (idx.tz_localize(UTC) if idx.tz is None else idx).tz_convert(NY) + pd.Timedelta(minutes=minutes)
        frame = pd.DataFrame({"open": [b.open for b in rows], "high": [b.high for b in rows],
                              "low": [b.low for b in rows], "close": [b.close for b in rows],
                              "volume": [float(b.volume) for b in rows]}, index=idx)
        frame.index.name = "ts"
        return frame[~frame.index.duplicated(keep="last")].sort_index()

    def daily(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        req = StockBarsRequest(symbol_or_symbols=self.underlying, timeframe=TimeFrame.Day,
                               start=dt.datetime.combine(start, dt.time(), UTC),
                               end=dt.datetime.combine(end, dt.time(23, 59), UTC))
        data = self._read(lambda: self.c.stock.get_stock_bars(req), "daily bars")
        rows = data.data.get(self.underlying, []) if hasattr(data, "data") else []
        idx = pd.DatetimeIndex([pd.Timestamp(b.timestamp).tz_convert(NY).tz_localize(None).normalize()
                                if pd.Timestamp(b.timestamp).tz is not None
                                else pd.Timestamp(b.timestamp).normalize() for b in rows])
        frame = pd.DataFrame({"open": [b.open for b in rows], "high": [b.high for b in rows],
                              "low": [b.low for b in rows], "close": [b.close for b in rows],
                              "volume": [float(b.volume) for b in rows], "open_modelled": False}, index=idx)
        frame.index.name = "date"
        return frame[~frame.index.duplicated(keep="last")].sort_index()

    def chain(self, lo: dt.date, hi: dt.date) -> list[OptionRow]:
        from alpaca.data.requests import OptionChainRequest
        from alpaca.trading.requests import GetOptionContractsRequest

        req = OptionChainRequest(underlying_symbol=self.underlying, expiration_date_gte=lo, expiration_date_lte=hi)
        snaps = self._read(lambda: self.c.option.get_option_chain(req), "option chain")
        oi: dict[str, float] = {}
        token = None
        for _ in range(50):  # the SDK does not paginate contracts
            creq = GetOptionContractsRequest(underlying_symbols=[self.underlying], expiration_date_gte=lo,
                                             expiration_date_lte=hi, limit=10000, page_token=token)
            resp = self._read(lambda r=creq: self.c.trading.get_option_contracts(r), "option contracts")
            for c in resp.option_contracts or []:
                oi[c.symbol] = float(c.open_interest) if c.open_interest is not None else 0.0
            token = resp.next_page_token
            if not token:
                break
        out = []
        for sym, s in snaps.items():
            q, g = s.latest_quote, s.greeks
            if q is None or g is None:
                continue
            _, expiry, right, strike = parse_occ(sym)
            ts = q.timestamp if q.timestamp is None or q.timestamp.tzinfo else q.timestamp.replace(tzinfo=UTC)
            out.append(OptionRow(sym, expiry, strike, right, float(q.bid_price or 0.0), float(q.ask_price or 0.0),
                                 float(s.implied_volatility or float("nan")), float(g.delta), float(g.gamma),
                                 float(g.theta), float(g.vega), ts, oi.get(sym, 0.0), 0.0))
        return sorted(out, key=lambda r: (r.expiry, r.strike, r.right))


# -- chain and marks --------------------------------------------------------------------------
def usable(row: OptionRow, now: dt.datetime, max_age_s: float) -> bool:
    """A quote the loop may trade on: two-sided, not crossed, not stale."""
    if not (row.ask > 0 and 0 <= row.bid <= row.ask and math.isfinite(row.delta)):
        return False
    return row.quote_ts is None or (now - row.quote_ts).total_seconds() <= max_age_s


def build_slices(rows: Sequence[OptionRow], session_date: dt.date) -> dict[dt.date, ExpirySlice]:
    """Expiry slices over the strikes quoted on both sides (calls and puts)."""
    by_exp: dict[dt.date, dict[float, dict[str, OptionRow]]] = {}
    for r in rows:
        by_exp.setdefault(r.expiry, {}).setdefault(r.strike, {})[r.right] = r
    out = {}
    for expiry, strikes in sorted(by_exp.items()):
        ks = sorted(k for k, sides in strikes.items() if "C" in sides and "P" in sides)
        if not ks:
            continue
        arrays: dict[str, list[float]] = {n: [] for n in ARRAY_NAMES}
        for k in ks:
            for prefix, right in (("call_", "C"), ("put_", "P")):
                r = strikes[k][right]
                for name, v in (("bid", r.bid), ("ask", r.ask), ("iv", r.iv), ("delta", r.delta),
                                ("gamma", r.gamma), ("theta", r.theta), ("vega", r.vega), ("volume", r.volume),
                                ("oi", r.open_interest)):
                    arrays[prefix + name].append(v)
        dte = (expiry - session_date).days
        out[expiry] = ExpirySlice(expiry, dte, max(dte, 0) / 365.0, np.array(ks, float),
                                  **{n: np.array(v, float) for n, v in arrays.items()})
    return out


def atm_iv(slices: Mapping[dt.date, ExpirySlice], spot: float, session_date: dt.date, target_days: int = 30
           ) -> float:
    """ATM implied volatility of the expiry nearest ``target_days`` (the live VIX stand-in), decimal."""
    if not slices:
        return float("nan")
    expiry = min(slices, key=lambda e: (abs((e - session_date).days - target_days), e))
    sl = slices[expiry]
    i = int(np.argmin(np.abs(sl.strikes - spot)))
    vals = [v for v in (sl.call_iv[i], sl.put_iv[i]) if math.isfinite(v) and v > 0]
    return float(np.mean(vals)) if vals else float("nan")


# -- features ---------------------------------------------------------------------------------
def vix_proxy(daily: pd.DataFrame, window: int = 20, premium: float = 1.1) -> pd.DataFrame:
    """Daily VIX stand-in: annualised close-to-close volatility x ``premium`` x 100 (``is_proxy``)."""
    r = np.log(daily["close"]).diff()
    vix = (r.rolling(window, min_periods=5).std() * math.sqrt(252) * premium * 100).bfill()
    return pd.DataFrame({"vix": vix.to_numpy(float), "is_proxy": True}, index=daily.index)


class RollingFeatures:
    """The batch feature pipeline over the live window; the last row is the decision bar's."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg

    def compute(self, bars: pd.DataFrame, daily: pd.DataFrame, vix: pd.DataFrame, vix_intraday: np.ndarray
                ) -> FeatureSet:
        from intelligence.pipeline import feature_set

        if bars.empty:
            raise DataError("no 5-minute bars from Alpaca for the feature window")
        return feature_set(self.cfg, bars, daily, vix, vix_intraday)


# -- the recorded cycle ---------------------------------------------------------------------
@dataclass
class CycleInputs:
    """Everything one decision reads; ``to_record`` / ``snapshot_from_record`` round-trip it exactly."""

    ts: dt.datetime
    session: SessionFacts
    bar: Bar
    closed_bars: dict[int, Bar]
    features: dict[str, float]
    mtf_reason: str
    slices: dict[dt.date, ExpirySlice]
    positions: list[tuple[Position, LegMarks]]
    cash: float
    start_of_day_equity: float
    halted: bool
    underlying: str = "SPY"
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> MarketSnapshot:
        arrays = {name: np.array([self.features[name]], float) for name in FEATURE_NAMES}
        table: tuple[str, ...] = ()
        if self.mtf_reason:
            arrays["mtf_reason_code"] = np.array([0.0])
            table = (self.mtf_reason,)
        fs = FeatureSet.from_arrays(arrays, table, source="live cycle")
        book_positions = tuple(BookPosition(p, m, p.max_loss * 100 * p.qty) for p, m in self.positions)
        reserved = sum(bp.reserved for bp in book_positions)
        book = Book(book_positions, self.cash, reserved, 0.0, 0.0, self.bar.close, self.start_of_day_equity,
                    self.halted)
        return MarketSnapshot(self.ts, self.session, self.bar, dict(self.closed_bars), fs.row(0),
                              StaticChain(dict(self.slices)), book, underlying=self.underlying)

    def to_record(self) -> dict[str, Any]:
        from core.live.ledger import legs_json

        return {
            "ts": self.ts.isoformat(), "underlying": self.underlying,
            "session": {"session_date": self.session.session_date.isoformat(),
                        "minutes_to_close": self.session.minutes_to_close, "last_bar": self.session.last_bar,
                        "first_bar": self.session.first_bar, "next_ex_dividend": self.session.next_ex_dividend},
            "bar": _bar(self.bar), "closed_bars": {str(k): _bar(b) for k, b in self.closed_bars.items()},
            "features": {k: _num(v) for k, v in self.features.items()}, "mtf_reason": self.mtf_reason,
            "slices": {e.isoformat(): {"dte": s.dte, "tau": s.tau, "strikes": s.strikes.tolist(),
                                       **{n: [_num(x) for x in getattr(s, n).tolist()] for n in ARRAY_NAMES}}
                       for e, s in self.slices.items()},
            "positions": [{"position_id": p.position_id, "structure": p.structure.value, "legs": legs_json(p.legs),
                           "qty": p.qty, "opened_at": p.opened_at.isoformat(), "credit": p.credit,
                           "max_loss": p.max_loss, "fees": p.entry_fees,
                           "marks": {n: [_num(x) for x in getattr(m, n).tolist()]
                                     for n in ("bid", "ask", "mid", "delta", "gamma", "vega", "theta")}}
                          for p, m in self.positions],
            "cash": self.cash, "start_of_day_equity": self.start_of_day_equity, "halted": self.halted,
            "extra": self.extra,
        }


def _num(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def _f(x: Any) -> float:
    return float(x)  # "nan" / "inf" strings parse too


def _bar(b: Bar) -> list[float]:
    return [b.open, b.high, b.low, b.close, b.volume]


def inputs_from_record(rec: Mapping[str, Any]) -> CycleInputs:
    from core.dto import Structure
    from core.live.ledger import legs_from_json

    s = rec["session"]
    session = SessionFacts(dt.date.fromisoformat(s["session_date"]), float(s["minutes_to_close"]),
                           bool(s["last_bar"]), bool(s["first_bar"]), s["next_ex_dividend"])
    slices = {}
    for e, d in rec["slices"].items():
        expiry = dt.date.fromisoformat(e)
        slices[expiry] = ExpirySlice(expiry, int(d["dte"]), float(d["tau"]), np.array(d["strikes"], float),
                                     **{n: np.array([_f(x) for x in d[n]], float) for n in ARRAY_NAMES})
    positions = []
    for p in rec["positions"]:
        pos = Position(p["position_id"], Structure(p["structure"]), legs_from_json(p["legs"]), int(p["qty"]),
                       dt.datetime.fromisoformat(p["opened_at"]), float(p["credit"]), float(p["max_loss"]),
                       float(p["fees"]))
        m = p["marks"]
        marks = LegMarks(*(np.array([_f(x) for x in m[n]], float)
                           for n in ("bid", "ask", "mid", "delta", "gamma", "vega", "theta")))
        positions.append((pos, marks))
    return CycleInputs(dt.datetime.fromisoformat(rec["ts"]), session, Bar(*rec["bar"]),
                       {int(k): Bar(*v) for k, v in rec["closed_bars"].items()},
                       {k: _f(v) for k, v in rec["features"].items()}, rec["mtf_reason"], slices, positions,
                       float(rec["cash"]), float(rec["start_of_day_equity"]), bool(rec["halted"]),
                       rec.get("underlying", "SPY"), dict(rec.get("extra") or {}))


def marks_for(position: Position, quotes: Mapping[str, OptionRow]) -> LegMarks | None:
    """Per-leg quotes and Greeks of a position, None when a leg has no usable quote."""
    rows = [quotes.get(leg.contract.occ_symbol) for leg in position.legs]
    if any(r is None for r in rows):
        return None
    rr = [r for r in rows if r is not None]
    bid = np.array([r.bid for r in rr])
    ask = np.array([r.ask for r in rr])
    return LegMarks(bid, ask, 0.5 * (bid + ask), np.array([r.delta for r in rr]), np.array([r.gamma for r in rr]),
                    np.array([r.vega for r in rr]), np.array([r.theta for r in rr]))


def closed_bars(bars: pd.DataFrame, bar_minutes: int) -> dict[int, Bar]:
    """Last closed bar per timeframe at the window's last bar (the backtest's own resampling)."""
    empty = FeatureSet.from_arrays({n: np.full(len(bars), np.nan) for n in FEATURE_NAMES})
    builder = SnapshotBuilder(bars, empty, _NoChain(), bar_minutes, "SPY")  # type: ignore[arg-type]
    i = len(bars) - 1
    out = {}
    for m in (bar_minutes, *(x for x in HIGHER_TIMEFRAMES if x > bar_minutes)):
        try:
            out[m] = builder.closed_bar(m, i)
        except KeyError:
            continue
    return out


class _NoChain:
    def expiries(self, ts: Any) -> list[dt.date]:
        return []

    def expiry_slice(self, ts: Any, expiry: dt.date) -> ExpirySlice:
        raise KeyError(expiry)


def session_facts(ts: dt.datetime, next_close: dt.datetime, bar_minutes: int,
                  session_open: dt.time = dt.time(9, 30)) -> SessionFacts:
    local = ts.astimezone(NY)
    minutes_to_close = max(0.0, (next_close - ts).total_seconds() / 60.0)
    first = local.time() == (dt.datetime.combine(local.date(), session_open)
                             + dt.timedelta(minutes=bar_minutes)).time()
    return SessionFacts(local.date(), minutes_to_close, minutes_to_close < bar_minutes, first, None)
