"""NYSE trading calendar: sessions, open/close times, early closes and intraday bar grids.

Built on ``exchange_calendars`` ("XNYS"), which knows the holidays (including one-off
closures such as 2018-12-05, the Bush state funeral) and the 13:00 early closes (the day
before Independence Day, the day after Thanksgiving, Christmas Eve).  The calendar object
is built once per process (``_xnys``) because construction takes ~0.1 s.

Conventions (see ``data_factory.base``): a session is named by its naive midnight date;
open/close and bar labels are tz-aware ``America/New_York``; intraday bars are labelled by
their **close** time, so the 5-minute bars of a normal day run 09:35, 09:40, ..., 16:00.

Example::

    >>> len(bar_close_times(dt.date(2018, 7, 3), 5))   # early close 13:00
    42
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TypeAlias

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.dto import DataError

NY_TZ = "America/New_York"
CALENDAR_FIRST = dt.date(1990, 1, 2)
CALENDAR_LAST = dt.date(2035, 12, 31)
NS_PER_MINUTE = 60_000_000_000

DateLike: TypeAlias = dt.date | str | pd.Timestamp | np.datetime64


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    """The XNYS calendar over ``CALENDAR_FIRST..CALENDAR_LAST`` (built once, cached)."""
    return xcals.get_calendar("XNYS", start=CALENDAR_FIRST.isoformat(), end=CALENDAR_LAST.isoformat())


@lru_cache(maxsize=1)
def _schedule_ns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session dates as int64 ns, open UTC int64 ns, close UTC int64 ns), sorted by date."""
    sched = _xnys().schedule
    days = sched.index.as_unit("ns").asi8.copy()
    opens = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8.copy()
    closes = pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8.copy()
    return days, opens, closes


def to_date(value: DateLike) -> dt.date:
    """Coerce a date, ISO string, Timestamp or datetime64 to ``datetime.date`` (time of day dropped)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"cannot read {value!r} as a date; use YYYY-MM-DD") from exc
    return ts.date()


def _check_range(day: dt.date) -> None:
    if not CALENDAR_FIRST <= day <= CALENDAR_LAST:
        raise DataError(
            f"date {day} is outside the trading calendar {CALENDAR_FIRST}..{CALENDAR_LAST}; pick a date inside it"
        )


def _naive(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day)


def is_session(day: DateLike) -> bool:
    """True when the NYSE is open on ``day``."""
    d = to_date(day)
    _check_range(d)
    return bool(_xnys().is_session(_naive(d)))


def sessions(start: DateLike, end: DateLike) -> pd.DatetimeIndex:
    """NYSE sessions with ``start <= session <= end`` as naive midnight dates (index name ``date``)."""
    d0, d1 = to_date(start), to_date(end)
    _check_range(d0)
    _check_range(d1)
    days = _schedule_ns()[0]
    lo = np.searchsorted(days, _naive(d0).as_unit("ns").value, side="left")
    hi = np.searchsorted(days, _naive(d1).as_unit("ns").value, side="right")
    return pd.DatetimeIndex(days[lo:hi].astype("datetime64[ns]"), name="date")


def _session_pos(day: DateLike) -> int:
    d = to_date(day)
    _check_range(d)
    days = _schedule_ns()[0]
    key = _naive(d).as_unit("ns").value
    pos = int(np.searchsorted(days, key))
    if pos >= len(days) or days[pos] != key:
        raise DataError(f"{d} is not an NYSE session (weekend or holiday); pick a trading day")
    return pos


def session_open_close(day: DateLike) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) of the session on ``day``, tz ``America/New_York``; DataError if closed."""
    _, opens, closes = _schedule_ns()
    pos = _session_pos(day)
    return (
        pd.Timestamp(opens[pos], tz="UTC").tz_convert(NY_TZ),
        pd.Timestamp(closes[pos], tz="UTC").tz_convert(NY_TZ),
    )


def is_early_close(day: DateLike) -> bool:
    """True when the session on ``day`` closes before 16:00 New York time."""
    _, close = session_open_close(day)
    return close.hour < 16


def session_bounds(days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (UTC int64 ns) of each session in ``days`` (naive dates); DataError on a non-session."""
    all_days, opens, closes = _schedule_ns()
    keys = pd.DatetimeIndex(days).as_unit("ns").asi8
    if len(keys) and (keys.min() < all_days[0] or keys.max() > all_days[-1]):
        raise DataError(
            f"dates {days.min().date()}..{days.max().date()} leave the trading calendar "
            f"{CALENDAR_FIRST}..{CALENDAR_LAST}"
        )
    pos = np.searchsorted(all_days, keys)
    pos = np.minimum(pos, len(all_days) - 1)
    bad = all_days[pos] != keys
    if bad.any():
        first_bad = pd.Timestamp(keys[bad][0]).date()
        raise DataError(f"{first_bad} is not an NYSE session (weekend or holiday); drop it from the data")
    return opens[pos], closes[pos]


def bar_grid(days: pd.DatetimeIndex, minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Close-labelled bar times (UTC int64 ns) for every session in ``days`` and the bar count per session.

    Bar k of a session (k = 1, 2, ...) is labelled ``min(open + k * minutes, close)``; the
    last bar of a session whose length is not a multiple of ``minutes`` is shorter.
    Count per session = ``ceil((close - open) / minutes)``.
    """
    if minutes < 1:
        raise DataError(f"bar size {minutes} minutes is invalid; use a positive whole number of minutes")
    opens, closes = session_bounds(days)
    step = minutes * NS_PER_MINUTE
    counts = -((opens - closes) // step)  # ceil division
    starts = np.repeat(opens, counts)
    ends = np.repeat(closes, counts)
    first = np.cumsum(counts) - counts
    k = np.arange(counts.sum()) - np.repeat(first, counts) + 1
    return np.minimum(starts + k * step, ends), counts


def bar_close_times(day: DateLike, minutes: int) -> pd.DatetimeIndex:
    """Close-labelled bar times of one session, tz New York (e.g. 09:35..16:00, 78 bars, for 5 minutes)."""
    pos = _session_pos(day)
    days = pd.DatetimeIndex([_schedule_ns()[0][pos]])
    labels, _ = bar_grid(days, minutes)
    return pd.DatetimeIndex(labels.astype("datetime64[ns]"), name="ts").tz_localize("UTC").tz_convert(NY_TZ)


def trading_days_between(d1: DateLike, d2: DateLike) -> int:
    """Sessions ``s`` with ``d1 < s <= d2`` (negative when ``d2 < d1``); Friday -> Monday is 1."""
    a, b = to_date(d1), to_date(d2)
    _check_range(a)
    _check_range(b)
    days = _schedule_ns()[0]
    ka = np.searchsorted(days, _naive(a).as_unit("ns").value, side="right")
    kb = np.searchsorted(days, _naive(b).as_unit("ns").value, side="right")
    return int(kb - ka)


def next_session(day: DateLike) -> dt.date:
    """First session strictly after ``day``."""
    d = to_date(day)
    _check_range(d)
    days = _schedule_ns()[0]
    pos = int(np.searchsorted(days, _naive(d).as_unit("ns").value, side="right"))
    if pos >= len(days):
        raise DataError(f"no session after {d} in the trading calendar (ends {CALENDAR_LAST})")
    return pd.Timestamp(days[pos]).date()


def previous_session(day: DateLike) -> dt.date:
    """Last session strictly before ``day``."""
    d = to_date(day)
    _check_range(d)
    days = _schedule_ns()[0]
    pos = int(np.searchsorted(days, _naive(d).as_unit("ns").value, side="left")) - 1
    if pos < 0:
        raise DataError(f"no session before {d} in the trading calendar (starts {CALENDAR_FIRST})")
    return pd.Timestamp(days[pos]).date()
