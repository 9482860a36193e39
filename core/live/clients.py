"""alpaca-py clients with our own timeouts, rate limit and retry policy.

alpaca-py 0.44 retries every 429/504 three times with a fixed 3 s wait -- order POSTs
included -- ignores ``Retry-After`` and passes no timeout to ``requests``.  Here:

* every client's SDK retry loop is switched off (``_retry = 0``: one attempt per call);
* every HTTP request carries a (connect, read) timeout and passes a shared client-side
  token bucket that keeps the account under its 200 requests/minute;
* reads (GET) are retried by :func:`call_read` with exponential backoff that honours
  ``Retry-After``; writes are never retried blindly -- ``core.broker.alpaca`` classifies an
  ambiguous order POST and looks the order up by its ``client_order_id`` first.

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` or the config file; the
``Credentials`` object never prints them (``repr`` and ``str`` are masked).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from core.broker.alpaca_http import (  # noqa: F401 -- re-exported for the live package
    BrokerUnavailable,
    Failure,
    RetryPolicy,
    call_read,
    classify,
    error_text,
)
from core.dto import ConfigError

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"

@dataclass(frozen=True)
class Credentials:
    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(key_id=***, secret_key=***)"

    __str__ = __repr__

    @classmethod
    def resolve(cls, key_id: str | None = None, secret_key: str | None = None) -> Credentials:
        """Environment first (``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``), then the config file."""
        key = os.environ.get("APCA_API_KEY_ID") or key_id or ""
        secret = os.environ.get("APCA_API_SECRET_KEY") or secret_key or ""
        if not key or not secret:
            raise ConfigError("Alpaca credentials missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY "
                              "(or live.api_key_id / live.api_secret_key in the config file)")
        return cls(key, secret)

    def secrets(self) -> tuple[str, str]:
        return (self.key_id, self.secret_key)


class RateLimiter:
    """Token bucket shared by every client: ``per_minute`` requests, bursts up to ``burst``."""

    def __init__(self, per_minute: float = 190.0, burst: int = 10, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock, self.sleep = clock, sleep
        self.last = clock()
        self.lock = threading.Lock()
        self.requests = 0

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; returns the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1.0 - 1e-9:
                    self.tokens = max(0.0, self.tokens - 1.0)
                    self.requests += 1
                    return waited
                need = max((1.0 - self.tokens) / self.rate, 1e-3)
            self.sleep(need)
            waited += need


class GuardedSession(requests.Session):
    """A ``requests`` session with a default timeout and the shared rate limiter."""

    def __init__(self, timeout: float, limiter: RateLimiter) -> None:
        super().__init__()
        self.timeout = timeout
        self.limiter = limiter

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        self.limiter.acquire()
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Endpoints:
    trading: str
    data: str
    stream: str | None = None  # None: the SDK's default for paper / live
    paper: bool = True


def endpoints(paper: bool, broker_url: str | None, data_url: str | None) -> Endpoints:
    trading = (broker_url or (PAPER_TRADING_URL if paper else LIVE_TRADING_URL)).rstrip("/")
    data = (data_url or DATA_URL).rstrip("/")
    stream = None
    if broker_url:
        stream = trading.replace("https://", "wss://").replace("http://", "ws://") + "/stream"
    return Endpoints(trading, data, stream, paper)


@dataclass
class Clients:
    trading: Any  # alpaca.trading.client.TradingClient
    stock: Any  # alpaca.data.historical.StockHistoricalDataClient
    option: Any  # alpaca.data.historical.OptionHistoricalDataClient
    limiter: RateLimiter
    endpoints: Endpoints
    credentials: Credentials = field(repr=False)
    timeout: float = 10.0


def make_clients(creds: Credentials, ep: Endpoints, timeout: float = 10.0, per_minute: float = 190.0,
                 limiter: RateLimiter | None = None) -> Clients:
    from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

    limiter = limiter or RateLimiter(per_minute)
    trading = TradingClient(creds.key_id, creds.secret_key, paper=ep.paper,
                            url_override=ep.trading if ep.trading not in (PAPER_TRADING_URL, LIVE_TRADING_URL)
                            else None)
    stock = StockHistoricalDataClient(creds.key_id, creds.secret_key,
                                      url_override=ep.data if ep.data != DATA_URL else None)
    option = OptionHistoricalDataClient(creds.key_id, creds.secret_key,
                                        url_override=ep.data if ep.data != DATA_URL else None)
    for client in (trading, stock, option):
        client._retry = 0  # no SDK retries: order POSTs must never be re-sent blindly
        client._retry_wait = 0
        client._session = GuardedSession(timeout, limiter)
    return Clients(trading, stock, option, limiter, ep, creds, timeout)
