"""Build the ``MarketSnapshot`` at bar ``i`` from arrays precomputed once per run.

Nothing is rebuilt per bar that could be computed before the loop: features are a lazy row
view, session facts come from arrays, the chain view is bound to the bar's timestamp and
builds expiry slices only when the core asks for one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.dto import Bar, Book, ExpirySlice, FeatureSet, MarketSnapshot, SessionFacts
from data_factory.base import ChainSource

HIGHER_TIMEFRAMES = (15, 60)


@dataclass(frozen=True, slots=True, eq=False)
class SourceChainView:
    """The chain source at one timestamp (``ChainView``)."""

    source: ChainSource
    ts: pd.Timestamp

    def expiries(self) -> list[dt.date]:
        return self.source.expiries(self.ts)

    def expiry_slice(self, expiry: dt.date) -> ExpirySlice:
        return self.source.expiry_slice(self.ts, expiry)


def _resampled(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    idx = pd.DatetimeIndex(bars.index)
    agg = bars.resample(f"{minutes}min", label="right", closed="right").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    agg = agg.dropna(subset=["close"])
    return agg[agg.index <= idx[-1]] if len(idx) else agg


class ClosedBars(Mapping[int, Bar]):
    """Last closed bar per timeframe at one base bar (looked up on access)."""

    __slots__ = ("_builder", "_i")

    def __init__(self, builder: SnapshotBuilder, i: int) -> None:
        self._builder, self._i = builder, i

    def __getitem__(self, minutes: int) -> Bar:
        return self._builder.closed_bar(minutes, self._i)

    def __iter__(self) -> Iterator[int]:
        return iter(self._builder.timeframes)

    def __len__(self) -> int:
        return len(self._builder.timeframes)


class SnapshotBuilder:
    def __init__(self, bars: pd.DataFrame, features: FeatureSet, chains: ChainSource, bar_minutes: int,
                 underlying: str, ex_dividend: Mapping[dt.date, float] | None = None,
                 event_kinds: tuple[str, ...] | None = None) -> None:
        if len(features) != len(bars):
            raise ValueError(f"features cover {len(features)} bars, the run has {len(bars)}")
        self.index = pd.DatetimeIndex(bars.index)
        self.stamps = list(self.index)  # boxed once, not per bar
        self.features = features
        self.chains = chains
        self.underlying = underlying
        self.ohlcv = bars[["open", "high", "low", "close", "volume"]].to_numpy(float)
        n = len(bars)
        local = self.index.tz_localize(None) if self.index.tz is not None else self.index
        self.dates = np.array([d.date() for d in local.normalize()]) if n else np.array([])
        self.last_of_day = np.r_[self.dates[1:] != self.dates[:-1], True] if n else np.array([], bool)
        self.first_of_day = np.r_[True, self.dates[1:] != self.dates[:-1]] if n else np.array([], bool)
        last_pos = np.flatnonzero(self.last_of_day)
        day_end = np.repeat(last_pos, np.diff(np.r_[-1, last_pos])) if n else np.array([], int)
        self.minutes_to_close = ((self.index[day_end] - self.index).total_seconds() / 60.0).to_numpy() if n else \
            np.array([])
        days = sorted(set(self.dates.tolist()))
        nxt = dict(zip(days[:-1], days[1:], strict=True))
        ex = dict(ex_dividend or {})
        self.next_ex = {d: ex.get(nxt[d]) for d in days if d in nxt and nxt[d] in ex}
        self.events: dict[dt.date, tuple[int, str]] = {}
        if event_kinds:  # scheduled events (FOMC, CPI) per session: only when an event gate or exit is on
            from data_factory.events import next_event, sessions_to_event

            for d, k in zip(days, sessions_to_event(days, event_kinds).tolist(), strict=True):
                upcoming = next_event(d, event_kinds) if k >= 0 else None
                self.events[d] = (k, f"{upcoming[0]} {upcoming[1]}" if upcoming else "")
        self.timeframes = (bar_minutes, *(m for m in HIGHER_TIMEFRAMES if m > bar_minutes))
        self._higher: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for m in self.timeframes[1:]:
            frame = _resampled(bars, m)
            pos = np.searchsorted(pd.DatetimeIndex(frame.index), self.index, side="right") - 1
            self._higher[m] = (frame[["open", "high", "low", "close", "volume"]].to_numpy(float), pos)

    def closed_bar(self, minutes: int, i: int) -> Bar:
        if minutes == self.timeframes[0]:
            return Bar(*(float(x) for x in self.ohlcv[i]))
        values, pos = self._higher[minutes]
        if pos[i] < 0:
            raise KeyError(f"no closed {minutes}-minute bar yet at {self.index[i]}")
        return Bar(*(float(x) for x in values[pos[i]]))

    def session(self, i: int) -> SessionFacts:
        day = self.dates[i]
        ev = self.events.get(day)
        return SessionFacts(day, float(self.minutes_to_close[i]), bool(self.last_of_day[i]),
                            bool(self.first_of_day[i]), self.next_ex.get(day),
                            None if ev is None or ev[0] < 0 else ev[0], ev[1] if ev else "")

    def snapshot(self, i: int, book: Book) -> MarketSnapshot:
        ts = self.stamps[i]
        return MarketSnapshot(ts, self.session(i), self.closed_bar(self.timeframes[0], i),
                              ClosedBars(self, i), self.features.row(i), SourceChainView(self.chains, ts), book,
                              underlying=self.underlying)
