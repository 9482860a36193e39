"""Session-aware resampling of close-labelled intraday bars and closed-bar alignment.

Bins are anchored at each session's open (09:30 New York): an ``m``-minute bin ``j``
(j = 1, 2, ...) covers ``(open + (j-1)·m, open + j·m]`` and is labelled
``min(open + j·m, close)``, so a 60-minute bar covering 09:30-10:30 carries the label 10:30
and the last bar of the day (15:30-16:00, or 12:30-13:00 on an early close) is shorter and
labelled by the session close.  A source bar labelled ``t`` falls in bin
``ceil((t - open) / m)``.  Aggregation: open = first, high = max, low = min, close = last,
volume = sum — all computed with ``np.*.reduceat`` over contiguous runs, no Python loop.

``align_closed`` maps each base-timeframe timestamp to the last higher-timeframe bar that
has already closed (label <= timestamp), the only bar a causal strategy may look at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.base import BAR_COLUMNS, NY_TZ
from data_factory.calendar import NS_PER_MINUTE, DateLike, session_bounds, to_date


def _utc_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Int64 UTC nanoseconds of a tz-aware index."""
    if index.tz is None:
        raise DataError("intraday bars must carry a timezone-aware index (America/New_York); localize them first")
    return index.tz_convert("UTC").as_unit("ns").asi8


def _session_days(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Session date (naive midnight) of each close-labelled bar."""
    return index.tz_convert(NY_TZ).tz_localize(None).normalize()


def _check_bars(bars: pd.DataFrame) -> None:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack column(s) {', '.join(missing)}; expected {', '.join(BAR_COLUMNS)}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError("bars must be indexed by a DatetimeIndex of bar close times")
    if not bars.index.is_monotonic_increasing:
        raise DataError("bar timestamps are not sorted ascending; sort the bars by time")


def _aggregate(bars: pd.DataFrame, group_start: np.ndarray) -> dict[str, np.ndarray]:
    """OHLCV of contiguous runs starting at positions ``group_start``."""
    group_end = np.append(group_start[1:], len(bars)) - 1
    return {
        "open": bars["open"].to_numpy(dtype=np.float64)[group_start],
        "high": np.maximum.reduceat(bars["high"].to_numpy(dtype=np.float64), group_start),
        "low": np.minimum.reduceat(bars["low"].to_numpy(dtype=np.float64), group_start),
        "close": bars["close"].to_numpy(dtype=np.float64)[group_end],
        "volume": np.add.reduceat(bars["volume"].to_numpy(dtype=np.float64), group_start),
    }


def resample_bars(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Resample close-labelled intraday bars to ``minutes`` bins anchored at each session open.

    Label of the bin holding a bar labelled ``t``: ``min(open + ceil((t - open)/m)·m, close)``.
    Returns the same columns, index ``ts`` tz New York.  Bars outside a session raise DataError.
    """
    _check_bars(bars)
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    if bars.empty:
        return bars.loc[:, list(BAR_COLUMNS)].copy()
    ts = _utc_ns(bars.index)
    opens, closes = session_bounds(_session_days(bars.index))
    if np.any(ts <= opens) or np.any(ts > closes):
        raise DataError("some bars are labelled outside their NYSE session (labels must lie in (open, close])")
    step = minutes * NS_PER_MINUTE
    labels = np.minimum(opens + -((opens - ts) // step) * step, closes)
    group_start = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    out = pd.DataFrame(_aggregate(bars, group_start), columns=list(BAR_COLUMNS))
    out.index = pd.DatetimeIndex(labels[group_start].astype("datetime64[ns]"), name="ts").tz_localize("UTC")
    out.index = out.index.tz_convert(NY_TZ)
    return out


def daily_from_intraday(bars: pd.DataFrame) -> pd.DataFrame:
    """Daily OHLCV per session (index ``date``, naive midnight) from close-labelled intraday bars."""
    _check_bars(bars)
    if bars.empty:
        empty = pd.DataFrame(columns=list(BAR_COLUMNS), dtype=np.float64)
        empty.index = pd.DatetimeIndex([], name="date")
        return empty
    days = _session_days(bars.index).as_unit("ns").asi8
    group_start = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    out = pd.DataFrame(_aggregate(bars, group_start), columns=list(BAR_COLUMNS))
    out.index = pd.DatetimeIndex(days[group_start].astype("datetime64[ns]"), name="date")
    return out


def _label_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """UTC ns of bar labels; a naive (daily) index is mapped to each session's close time."""
    if index.tz is None:
        return session_bounds(index.normalize())[1]
    return _utc_ns(index)


def align_closed(higher: pd.DataFrame | pd.DatetimeIndex, base_index: pd.DatetimeIndex) -> np.ndarray:
    """For each base timestamp, the position of the last ``higher`` bar with label <= it (-1 if none).

    ``pos[i] = searchsorted(higher_labels, base[i], side="right") - 1``.  A daily frame
    (naive session dates) is labelled by each session's close, so a daily bar becomes
    visible only at 16:00 (13:00 on early closes).
    """
    h_index = higher if isinstance(higher, pd.DatetimeIndex) else higher.index
    h_ns = _label_ns(pd.DatetimeIndex(h_index))
    b_ns = _label_ns(pd.DatetimeIndex(base_index))
    if len(h_ns) > 1 and np.any(np.diff(h_ns) < 0):
        raise DataError("higher-timeframe bars are not sorted ascending; sort them by time")
    return np.searchsorted(h_ns, b_ns, side="right").astype(np.int64) - 1


def slice_dates(
    frame: pd.DataFrame, start: DateLike | None, end: DateLike | None, source: str, hint: str = "pick dates inside it"
) -> pd.DataFrame:
    """Copy of the rows of a date-indexed frame with start <= date <= end (None = open end).

    Raises DataError (one line naming the available range) when the range leaves the frame.
    """
    first, last = frame.index[0].date(), frame.index[-1].date()
    lo = first if start is None else to_date(start)
    hi = last if end is None else to_date(end)
    if lo > hi:
        raise DataError(f"start {lo} is after end {hi}; give start <= end")
    if lo < first or hi > last:
        raise DataError(f"{source} covers {first}..{last}; {lo}..{hi} is outside it ({hint})")
    return frame.loc[pd.Timestamp(lo) : pd.Timestamp(hi)].copy()
