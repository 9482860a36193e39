"""Interfaces every market-data source implements.

Conventions (all sources):

* Intraday bars are labelled by their **close time**, tz-aware ``America/New_York``; the
  5-minute bar covering 09:30-09:35 carries the label 09:35.  A bar labelled ``t`` is
  visible to a strategy at ``t`` and never earlier.  Columns: ``open, high, low, close,
  volume`` (float64), index name ``ts``.
* Daily bars are indexed by session date (``DatetimeIndex`` of naive midnight dates, name
  ``date``), same columns.
* VIX is a daily frame indexed like daily bars with columns ``vix`` (index points, e.g.
  18.5) and ``is_proxy`` (bool: True where the value is a model proxy, not the real index).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from core.config import AppConfig
from core.dto import ChainSnapshot, ExpirySlice

NY_TZ = "America/New_York"
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
# The run config's defaults: the one source of the seed, underlying, rate, dividend yield and
# chain-alignment limit a source falls back on when its caller passes none.
DEFAULTS = AppConfig()


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Provenance of a data source, written into every run record."""

    name: str  # embedded | synthetic | files | alpaca
    underlying: str
    first_date: dt.date
    last_date: dt.date
    intraday_synthetic: bool  # intraday bars synthesised (bridge), not observed
    vix_proxy_until: dt.date | None  # VIX values up to and including this date are a proxy
    chains_modelled: bool  # option chains priced from a model surface, not observed quotes
    notes: tuple[str, ...] = field(default_factory=tuple)
    # what each modelled part is and what each flag in the outputs means (run.json "market_model")
    market_model: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "underlying": self.underlying,
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "intraday_synthetic": self.intraday_synthetic,
            "vix_proxy_until": self.vix_proxy_until.isoformat() if self.vix_proxy_until else None,
            "chains_modelled": self.chains_modelled,
            "notes": list(self.notes),
            "market_model": dict(self.market_model),
        }


@dataclass(frozen=True, slots=True)
class ContractMarks:
    """Vectorised quotes for a list of contracts at one timestamp (same order as asked)."""

    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    iv: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray


@runtime_checkable
class ChainSource(Protocol):
    """Option chains at any timestamp of the source's bars."""

    def expiries(self, ts: pd.Timestamp) -> list[dt.date]:
        """Listed expiries on ``ts``'s date that have not expired (sorted)."""
        ...

    def expiry_slice(self, ts: pd.Timestamp, expiry: dt.date) -> ExpirySlice:
        """The quotes of one expiry at ``ts`` (built lazily, cached)."""
        ...

    def snapshot(self, ts: pd.Timestamp, dte_min: int = 0, dte_max: int = 60) -> ChainSnapshot:
        """All expiries with ``dte_min <= dte <= dte_max`` calendar days at ``ts``."""
        ...

    def marks(
        self, ts: pd.Timestamp, expiries: np.ndarray, strikes: np.ndarray, is_call: np.ndarray
    ) -> ContractMarks:
        """Quotes of arbitrary contracts at ``ts`` (used every bar for mark-to-market)."""
        ...


@runtime_checkable
class MarketSource(Protocol):
    """A bar + VIX + option-chain source (embedded, synthetic, vendor files, Alpaca)."""

    info: SourceInfo

    def daily_bars(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame: ...

    def intraday_bars(self, start: dt.date, end: dt.date, minutes: int = 5) -> pd.DataFrame: ...

    def vix(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame: ...

    def chains(self, bars: pd.DataFrame) -> ChainSource:
        """A chain source whose spot at each timestamp is ``bars['close']`` (as-of)."""
        ...
