"""Variance ("business time") clock for pricing modelled options in trading time.

The clock ``U(t)`` counts variance units on the NYSE calendar (``data_factory.calendar``, XNYS,
holidays and 13:00 early closes included):

* every session carries **1 unit**, spread uniformly over its minutes (open to close; a 13:00
  half day packs its unit into 3.5 hours);
* every gap between consecutive sessions (weeknight, weekend, holiday) carries
  ``GAP_UNITS = 0.25`` unit, spread uniformly over its calendar duration.  This is the same
  overnight share as ``data_factory.bridge.VIX_OVERNIGHT`` (the embedded market's overnight
  residual variance, in sessions), which is defined as this constant;
* outside the calendar (before the first open, after the last close) the clock runs at its
  long-run average rate, ``UNITS_PER_YEAR`` per 365 calendar days.

``U`` is continuous and non-decreasing in ``t``; ``U(open_0) = 0``, ``U(open_i) = i (1 + g)``,
``U(close_i) = i (1 + g) + 1`` (sessions count from 1990, so ``U`` is ~1e4 in this century; a
float64 resolves it to ~2e-12 units, well under a microsecond of a session, i.e. ~1e-14 years of
tau).  A time to expiry in years is ``tau = (U(expiry close) - U(t)) / UNITS_PER_YEAR`` with
``UNITS_PER_YEAR = (1 + g) * 252``, so a calendar year averages about one variance year (30-DTE
options price close to calendar time) while at 10:00 on an expiry day ``tau = (6 / 6.5) / 315``:
the 6 of 6.5 session hours left.

An option's expiry close is the close of the session on its expiry date (16:00 New York, 13:00 on
an early-close day, when the underlying's settlement price is struck); an expiry date that is no
session (outside the calendar) falls back to 16:00 New York.

Example::

    >>> clk = trading_clock()
    >>> t = pd.Timestamp("2017-03-03 10:00", tz=NY_TZ).value
    >>> close = int(clk.expiry_close_ns(np.array([(dt.date(2017, 3, 3) - dt.date(1970, 1, 1)).days]))[0])
    >>> round(float((clk.units(np.array([close])) - clk.units(np.array([t])))[0]), 6)
    0.923077
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from data_factory.calendar import CALENDAR_FIRST, CALENDAR_LAST, NY_TZ, session_bounds, sessions

GAP_UNITS = 0.25  # variance of a gap between sessions, in sessions (data_factory.bridge.VIX_OVERNIGHT is this)
SESSIONS_PER_YEAR = 252
UNITS_PER_YEAR = (1.0 + GAP_UNITS) * SESSIONS_PER_YEAR  # 315 variance units per variance year
NS_PER_DAY = 86_400_000_000_000
_EXPIRY_HOUR_NS = 16 * 3_600_000_000_000  # fallback expiry close, 16:00 local


class TradingClock:
    """``U(t)`` on precomputed session open/close arrays (UTC int64 ns), vectorised with ``searchsorted``."""

    __slots__ = ("_closes", "_days", "_ext_rate", "_gap", "_opens", "_u_close", "_u_open")

    def __init__(self, days_ns: np.ndarray, opens_ns: np.ndarray, closes_ns: np.ndarray,
                 gap_units: float = GAP_UNITS) -> None:
        self._days = np.asarray(days_ns, np.int64)
        self._opens = np.asarray(opens_ns, np.int64)
        self._closes = np.asarray(closes_ns, np.int64)
        n = len(self._opens)
        if n == 0 or len(self._closes) != n or np.any(self._closes <= self._opens) or \
                np.any(self._opens[1:] <= self._closes[:-1]):
            raise ValueError("trading clock needs sorted, non-overlapping sessions with open < close")
        self._gap = float(gap_units)
        self._u_open = np.arange(n, dtype=float) * (1.0 + gap_units)
        self._u_close = self._u_open + 1.0
        self._ext_rate = (1.0 + gap_units) * SESSIONS_PER_YEAR / (365.0 * NS_PER_DAY)  # units per ns

    def units(self, t_ns: ArrayLike) -> np.ndarray:
        """``U`` at UTC nanoseconds ``t_ns`` (any shape), in session units."""
        t = np.asarray(t_ns, np.int64)
        opens, closes = self._opens, self._closes
        n = len(opens)
        i = np.searchsorted(opens, t, side="right") - 1  # last session opened at or before t
        ic = np.clip(i, 0, n - 1)
        o, c = opens[ic], closes[ic]
        nxt = opens[np.minimum(ic + 1, n - 1)]
        in_session = (t - o) / (c - o)
        gap_len = np.where(ic + 1 < n, nxt - c, 1)
        in_gap = np.where(ic + 1 < n, self._gap * (t - c) / gap_len, (t - c) * self._ext_rate)
        u = np.where(t <= c, self._u_open[ic] + in_session, self._u_close[ic] + in_gap)
        return np.where(i < 0, (t - opens[0]) * self._ext_rate, u)

    def expiry_close_ns(self, day_numbers: ArrayLike) -> np.ndarray:
        """UTC ns of the expiry close of ``datetime64[D]`` day numbers: the session's close, else 16:00 New York."""
        days = np.asarray(day_numbers, np.int64)
        keys = days * NS_PER_DAY
        pos = np.minimum(np.searchsorted(self._days, keys), len(self._days) - 1)
        found = self._days[pos] == keys
        out = self._closes[pos].copy()
        if not np.all(found):
            local = pd.DatetimeIndex((keys[~found] + _EXPIRY_HOUR_NS).astype("datetime64[ns]")).tz_localize(NY_TZ)
            out[~found] = local.as_unit("ns").asi8
        return out

    def expiry_units(self, day_numbers: ArrayLike) -> np.ndarray:
        """``U`` at the expiry close of each day number."""
        return self.units(self.expiry_close_ns(day_numbers))

    def tau(self, t_ns: ArrayLike, day_numbers: ArrayLike) -> np.ndarray:
        """Variance-time years from ``t_ns`` to the expiry close of ``day_numbers`` (broadcast; <= 0 once expired)."""
        return (self.expiry_units(day_numbers) - self.units(t_ns)) / UNITS_PER_YEAR


@lru_cache(maxsize=1)
def trading_clock() -> TradingClock:
    """The XNYS clock over the project calendar (built once per process)."""
    days = sessions(CALENDAR_FIRST, CALENDAR_LAST)
    opens, closes = session_bounds(days)
    return TradingClock(days.as_unit("ns").asi8, opens, closes)


def day_number(day: dt.date) -> int:
    """``datetime64[D]`` day number of a date (days since 1970-01-01)."""
    return (day - dt.date(1970, 1, 1)).days
