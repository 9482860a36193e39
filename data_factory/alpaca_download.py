"""``data download --source alpaca``: stock bars, option contracts and option bars into the vendor
layout, resumable and rate-limited.

Layout (Parquet, partitioned by underlying and date; one folder per session)::

    <out>/stocks/underlying=SPY/date=2018-03-01/bars_5Min.parquet        t, open, high, low, close, volume,
                                                                          trade_count, vwap (t = bar start, UTC)
    <out>/options/underlying=SPY/date=2018-03-01/contracts.parquet       the listing that day (0-60 DTE)
    <out>/options/underlying=SPY/date=2018-03-01/option_bars_5Min.parquet  symbol + the bar columns
    <out>/options/underlying=SPY/date=D/chain_snapshots.parquet  today only: quotes, IV and Greeks (Alpaca
                                                                 has no snapshots of past days)
    <out>/.../date=D/_COMPLETE                                           written last: the day is whole

Resume: a day whose folder holds ``_COMPLETE`` is skipped; any other day folder of the layout is
removed (only the files this module writes) and downloaded again, so nothing half-written is
ever trusted.  Requests go through the real alpaca-py REST clients (``url_override`` for tests)
with the SDK's own retries switched off and ours in their place: a sliding window keeps under
``max_per_minute`` (default 190 < Alpaca's 200); a 429 waits ``Retry-After`` or an exponential
back-off (1, 2, 4 ... 30 s) and tries again up to ``max_429`` times — a storm slows the download,
it does not fail it; timeouts, connection errors and 5xx are retried 3 times (0.5, 1, 2 s), then the run stops
with one line (``DataError``).  Pagination follows ``next_page_token`` to the end.  Credentials
come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` and are written nowhere.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from core.dto import ConfigError, DataError
from data_factory.calendar import sessions

TIMEFRAMES = ("1Min", "5Min", "15Min", "1Day")
COMPLETE = "_COMPLETE"
OUR_FILES = ("bars_{tf}.parquet", "contracts.parquet", "option_bars_{tf}.parquet", "chain_snapshots.parquet",
             COMPLETE)


class _TimeoutSession(requests.Session):
    """A ``requests`` session with a default timeout (alpaca-py sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(*args, **kwargs)


@dataclass
class RateLimiter:
    """Sliding window: at most ``per_minute`` requests in any 60 s; ``clock``/``sleep`` injectable."""

    per_minute: int = 190
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sent: list[float] = field(default_factory=list)

    def wait(self) -> None:
        now = self.clock()
        self.sent = [t for t in self.sent if now - t < 60.0]
        if len(self.sent) >= self.per_minute:
            self.sleep(60.0 - (now - self.sent[0]) + 1e-3)
            now = self.clock()
            self.sent = [t for t in self.sent if now - t < 60.0]
        self.sent.append(now)


@dataclass
class Fetcher:
    """GET with our retry policy through an alpaca-py REST client (``client.get``)."""

    limiter: RateLimiter
    sleep: Callable[[float], None] = time.sleep
    max_429: int = 12
    max_errors: int = 3
    requests_sent: int = 0
    waits_429: int = 0
    slept_429: list[float] = field(default_factory=list)

    def get(self, client: Any, path: str, params: dict[str, Any]) -> dict[str, Any]:
        from alpaca.common.exceptions import APIError

        errors = rate = 0
        while True:
            self.limiter.wait()
            self.requests_sent += 1
            try:
                body = client.get(path, params)
                if not isinstance(body, dict):
                    raise DataError(f"alpaca {path}: unexpected response ({type(body).__name__}); the API changed?")
                return body
            except APIError as exc:
                status = exc.status_code or 0
                if status == 429 and rate < self.max_429:
                    rate += 1
                    self.waits_429 += 1
                    after = exc.response.headers.get("Retry-After") if exc.response is not None else None
                    wait = _seconds(after, min(30.0, 2.0 ** (rate - 1)))
                    self.slept_429.append(wait)
                    self.sleep(wait)
                    continue
                if status >= 500 and errors < self.max_errors:
                    errors += 1
                    self.sleep(0.5 * 2.0 ** (errors - 1))
                    continue
                if status in (401, 403):
                    raise ConfigError(f"alpaca {path}: HTTP {status} (not authorised); check APCA_API_KEY_ID / "
                                      "APCA_API_SECRET_KEY and the data subscription") from None
                raise DataError(f"alpaca {path}: HTTP {status} after {rate} rate-limit waits and {errors} retries; "
                                "rerun later (finished days are kept)") from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                if errors < self.max_errors:
                    errors += 1
                    self.sleep(0.5 * 2.0 ** (errors - 1))
                    continue
                raise DataError(f"alpaca {path}: network error ({type(exc).__name__}) after {errors} retries; "
                                "check the connection and rerun (finished days are kept)") from None

    def pages(self, client: Any, path: str, params: dict[str, Any], key: str) -> Iterator[Any]:
        """Every page's ``key`` until ``next_page_token`` is null."""
        token = None
        while True:
            body = self.get(client, path, {**params, **({"page_token": token} if token else {})})
            if key not in body:
                raise DataError(f"alpaca {path}: response lacks '{key}' (fields: {sorted(body)[:6]}); the API changed?")
            yield body[key]
            token = body.get("next_page_token")
            if not token:
                return


def _seconds(header: str | None, default: float) -> float:
    try:
        return max(0.0, float(header)) if header is not None else default
    except ValueError:
        return default


def credentials(cfg_key: str | None = None, cfg_secret: str | None = None) -> tuple[str, str]:
    key = os.environ.get("APCA_API_KEY_ID") or cfg_key
    secret = os.environ.get("APCA_API_SECRET_KEY") or cfg_secret
    if not key or not secret:
        raise ConfigError("alpaca credentials missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
    return key, secret


def make_clients(key: str, secret: str, url: str | None, timeout: float = 10.0) -> dict[str, Any]:
    """The real alpaca-py clients, the SDK's retries off (ours apply), a request timeout on."""
    from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

    clients = {"stock": StockHistoricalDataClient(key, secret, url_override=url),
               "option": OptionHistoricalDataClient(key, secret, url_override=url),
               "trading": TradingClient(key, secret, paper=True, url_override=url)}
    for c in clients.values():
        c._retry = 0
        c._session = _TimeoutSession(timeout)
    return clients


@dataclass(frozen=True)
class DownloadResult:
    days_done: int
    days_skipped: int
    requests: int
    waits_429: int
    out_dir: Path

    def summary(self) -> str:
        return (f"downloaded {self.days_done} day(s), skipped {self.days_skipped} complete day(s) in {self.out_dir} "
                f"({self.requests} requests, {self.waits_429} rate-limit waits)")


def _utc(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_bounds(day: dt.date) -> tuple[str, str]:
    start = pd.Timestamp(day, tz="America/New_York")
    return _utc(start.to_pydatetime()), _utc((start + pd.Timedelta(days=1)).to_pydatetime())


def _bars_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = {"t": "t", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "n": "trade_count",
            "vw": "vwap"}
    frame = pd.DataFrame(rows)
    missing = [k for k in ("t", "o", "h", "l", "c", "v") if k not in frame.columns]
    if len(frame) and missing:
        raise DataError(f"alpaca bars lack field(s) {missing}; the API changed?")
    frame = frame.rename(columns=cols).reindex(columns=list(cols.values()))
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    return frame


def _clean_day(folder: Path, tf: str) -> None:
    """Remove the files this module writes from a half-written day (nothing else)."""
    for name in OUR_FILES:
        p = folder / name.format(tf=tf)
        if p.is_file():
            p.unlink()
    for tmp in folder.glob(".*.part"):
        tmp.unlink()


def _write(frame: pd.DataFrame, path: Path) -> None:
    part = path.parent / f".{path.name}.part"
    frame.to_parquet(part, index=False)
    part.replace(path)


def download(symbols: list[str], start: dt.date, end: dt.date, timeframe: str, out_dir: str | Path, *,
             options: bool = False, url: str | None = None, key: str | None = None, secret: str | None = None,
             max_per_minute: int = 190, progress: bool = True, fetcher: Fetcher | None = None,
             dte_max: int = 60, today: dt.date | None = None) -> DownloadResult:
    if timeframe not in TIMEFRAMES:
        raise ConfigError(f"--timeframe {timeframe!r}: choose one of {', '.join(TIMEFRAMES)}")
    if start > end:
        raise ConfigError(f"--start {start} is after --end {end}")
    if not symbols:
        raise ConfigError("--symbols: give at least one symbol, e.g. SPY or SPY,QQQ")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root}: is a file; give a folder")
    if root.is_dir() and any(p for p in root.iterdir() if p.name not in ("stocks", "options")):
        raise ConfigError(f"--out {root}: holds files that are not a download of this tool; give a new folder")
    key, secret = credentials(key, secret)
    clients = make_clients(key, secret, url)
    fetch = fetcher or Fetcher(RateLimiter(max_per_minute))
    days = [d.date() for d in sessions(start, end)]
    done = skipped = 0
    from tqdm import tqdm

    bar = tqdm(total=len(days) * len(symbols), desc="download", unit="day", disable=not progress)
    for sym in symbols:
        for day in days:
            stock_dir = root / "stocks" / f"underlying={sym}" / f"date={day}"
            opt_dir = root / "options" / f"underlying={sym}" / f"date={day}"
            if (stock_dir / COMPLETE).is_file() and (not options or (opt_dir / COMPLETE).is_file()):
                skipped += 1
                bar.update(1)
                continue
            _download_day(fetch, clients, sym, day, timeframe, stock_dir, opt_dir if options else None, dte_max,
                          today or pd.Timestamp.now(tz="America/New_York").date())
            done += 1
            bar.update(1)
    bar.close()
    return DownloadResult(done, skipped, fetch.requests_sent, fetch.waits_429, root)


def _download_day(fetch: Fetcher, clients: dict[str, Any], sym: str, day: dt.date, tf: str, stock_dir: Path,
                  opt_dir: Path | None, dte_max: int, today: dt.date) -> None:
    lo, hi = _day_bounds(day)
    if not (stock_dir / COMPLETE).is_file():
        stock_dir.mkdir(parents=True, exist_ok=True)
        _clean_day(stock_dir, tf)
        rows: list[dict[str, Any]] = []
        for page in fetch.pages(clients["stock"], "/stocks/bars",
                                {"symbols": sym, "timeframe": tf, "start": lo, "end": hi, "limit": 10000,
                                 "adjustment": "raw", "feed": "sip"}, "bars"):
            rows += (page or {}).get(sym, [])
        _write(_bars_frame(rows), stock_dir / f"bars_{tf}.parquet")
        (stock_dir / COMPLETE).write_text("ok\n")
    if opt_dir is None or (opt_dir / COMPLETE).is_file():
        return
    opt_dir.mkdir(parents=True, exist_ok=True)
    _clean_day(opt_dir, tf)
    contracts: list[dict[str, Any]] = []
    for page in fetch.pages(clients["trading"], "/options/contracts",
                            {"underlying_symbols": sym, "expiration_date_gte": day.isoformat(),
                             "expiration_date_lte": (day + dt.timedelta(days=dte_max)).isoformat(),
                             "status": "active", "limit": 10000}, "option_contracts"):
        contracts += page or []
    frame = pd.DataFrame(contracts)
    _write(frame, opt_dir / "contracts.parquet")
    symbols = frame["symbol"].tolist() if "symbol" in frame else []
    bars: list[pd.DataFrame] = []
    for i in range(0, len(symbols), 100):
        batch = symbols[i:i + 100]
        got: dict[str, list[dict[str, Any]]] = {}
        for page in fetch.pages(clients["option"], "/options/bars",
                                {"symbols": ",".join(batch), "timeframe": tf, "start": lo, "end": hi,
                                 "limit": 10000}, "bars"):
            for s, rows_s in (page or {}).items():
                got.setdefault(s, []).extend(rows_s)
        for s, rows_s in got.items():
            if rows_s:
                bars.append(_bars_frame(rows_s).assign(symbol=s))
    out = pd.concat(bars, ignore_index=True) if bars else _bars_frame([]).assign(symbol=pd.Series(dtype=str))
    _write(out, opt_dir / f"option_bars_{tf}.parquet")
    if day == today:  # Alpaca's chain snapshots are the latest quotes and Greeks only: today's, never past days'
        snaps: dict[str, Any] = {}
        for page in fetch.pages(clients["option"], f"/options/snapshots/{sym}", {"limit": 1000}, "snapshots"):
            snaps.update(page or {})
        _write(_snapshot_frame(snaps, sym), opt_dir / "chain_snapshots.parquet")
    (opt_dir / COMPLETE).write_text("ok\n")


def _snapshot_frame(snaps: dict[str, Any], sym: str) -> pd.DataFrame:
    """Chain snapshots (OCC symbol -> latestQuote, impliedVolatility, greeks) as vendor-layout rows."""
    rows = []
    for occ, snap in snaps.items():
        q = (snap or {}).get("latestQuote") or {}
        g = (snap or {}).get("greeks") or {}
        tail = occ[len(occ) - 15:]  # YYMMDD + C/P + strike x 1000 (8 digits)
        try:
            expiry = dt.date(2000 + int(tail[:2]), int(tail[2:4]), int(tail[4:6]))
            strike = int(tail[7:]) / 1000.0
        except ValueError:
            raise DataError(f"alpaca chain snapshot: {occ!r} is not an OCC option symbol; the API changed?") from None
        rows.append({"underlying_symbol": sym, "quote_date": pd.Timestamp(q.get("t")) if q.get("t") else pd.NaT,
                     "expiration": expiry, "strike": strike, "option_type": "call" if tail[6] == "C" else "put",
                     "bid": q.get("bp"), "ask": q.get("ap"), "implied_volatility": snap.get("impliedVolatility"),
                     **{k: g.get(k) for k in ("delta", "gamma", "theta", "vega")}})
    return pd.DataFrame(rows)
