"""SPY option listing calendar (which expiries trade on a date) and the strike grid.

Expiry families, by the date they are listed on (dates are modelling choices, documented here):

* **Monthlies** - third Friday of every month, always listed: the next ``MIN_MONTHLIES`` (12)
  monthly expiries, plus June and December third Fridays (quarterly / LEAPS-like) further
  out up to ``horizon_days``.
* **Weekly Fridays** - every Friday within ``WEEKLY_WINDOW_DAYS`` (42 days, ~6 weeks) from
  ``WEEKLY_START`` (2005-10-28, the start of the Cboe Weeklys programme; SPY weeklies became
  liquid around 2010, the earlier date is a deliberate simplification).
* **Wednesday** expiries from ``WEDNESDAY_START`` (2016-02-23) and **Monday** expiries from
  ``MONDAY_START`` (2016-08-15), near-term only: within ``SHORT_WINDOW_DAYS`` (21 days).
* **Daily** Tuesday/Thursday expiries from ``DAILY_START`` (2022-11-14), within
  ``DAILY_WINDOW_DAYS`` (14 days).

An expiry that falls on an NYSE holiday moves to the previous session (Good Friday
2018-03-30 -> 2018-03-29), using ``exchange_calendars`` XNYS sessions 1990-2035 (outside that
range only weekends count as non-sessions).

Strike grid: every $1 within +-15% of spot and every $5 beyond, out to +-50%.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import numpy as np

from data_factory import calendar

WEEKLY_START = dt.date(2005, 10, 28)
WEDNESDAY_START = dt.date(2016, 2, 23)
MONDAY_START = dt.date(2016, 8, 15)
DAILY_START = dt.date(2022, 11, 14)
MIN_MONTHLIES = 12
WEEKLY_WINDOW_DAYS = 42
SHORT_WINDOW_DAYS = 21
DAILY_WINDOW_DAYS = 14
FINE_BAND = 0.15  # $1 strikes within +-15% of spot
OUTER_BAND = 0.50  # $5 strikes out to +-50% of spot
_CAL_START, _CAL_END = calendar.CALENDAR_FIRST, calendar.CALENDAR_LAST


@functools.lru_cache(maxsize=1)
def _nyse_sessions() -> np.ndarray:
    """Sorted XNYS session dates of the project calendar as ``datetime64[D]`` (built once)."""
    return calendar.sessions(_CAL_START, _CAL_END).values.astype("datetime64[D]")


def is_session(day: dt.date) -> bool:
    """True when ``day`` is an NYSE trading session (weekday outside the cached calendar range)."""
    if not (_CAL_START <= day <= _CAL_END):
        return day.weekday() < 5
    sessions = _nyse_sessions()
    d = np.datetime64(day, "D")
    i = int(np.searchsorted(sessions, d))
    return i < len(sessions) and sessions[i] == d


def previous_session_on_or_before(day: dt.date) -> dt.date:
    """``day`` itself if it is a session, else the closest earlier session."""
    while not is_session(day):
        day -= dt.timedelta(days=1)
    return day


def third_friday(year: int, month: int) -> dt.date:
    """Third Friday of a month: first Friday is day ``1 + (4 - weekday(1st)) % 7``, plus 14 days."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def _monthlies(on: dt.date, horizon_days: int) -> list[dt.date]:
    """Next ``MIN_MONTHLIES`` unexpired third Fridays plus Jun/Dec ones out to the horizon."""
    out: list[dt.date] = []
    year, month = on.year, on.month
    limit = on + dt.timedelta(days=horizon_days)
    while True:
        friday = third_friday(year, month)
        expiry = previous_session_on_or_before(friday)
        if expiry >= on:
            if len(out) < MIN_MONTHLIES:
                out.append(expiry)
            elif friday > limit:
                break
            elif month in (6, 12):
                out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _weekday_expiries(on: dt.date, weekday: int, window_days: int) -> list[dt.date]:
    """Every ``weekday`` (0 = Monday) from ``on`` through ``on + window_days``, holiday-shifted."""
    first = on + dt.timedelta(days=(weekday - on.weekday()) % 7)
    days = [first + dt.timedelta(days=7 * i) for i in range(window_days // 7 + 1)]
    shifted = [previous_session_on_or_before(d) for d in days if d <= on + dt.timedelta(days=window_days)]
    return [d for d in shifted if d >= on]


@functools.lru_cache(maxsize=4096)
def _listed_cached(on: dt.date, horizon_days: int) -> tuple[dt.date, ...]:
    expiries = set(_monthlies(on, horizon_days))
    if on >= WEEKLY_START:
        expiries.update(_weekday_expiries(on, 4, min(WEEKLY_WINDOW_DAYS, horizon_days)))
    if on >= WEDNESDAY_START:
        expiries.update(_weekday_expiries(on, 2, min(SHORT_WINDOW_DAYS, horizon_days)))
    if on >= MONDAY_START:
        expiries.update(_weekday_expiries(on, 0, min(SHORT_WINDOW_DAYS, horizon_days)))
    if on >= DAILY_START:
        for weekday in (1, 3):
            expiries.update(_weekday_expiries(on, weekday, min(DAILY_WINDOW_DAYS, horizon_days)))
    return tuple(sorted(expiries))


def listed_expiries(on: dt.date, horizon_days: int = 400) -> list[dt.date]:
    """Sorted SPY expiries listed on date ``on`` (expiry >= ``on``; see module docstring).

    >>> listed_expiries(dt.date(2018, 2, 20))[:4]
    [datetime.date(2018, 2, 21), datetime.date(2018, 2, 23), datetime.date(2018, 2, 26), datetime.date(2018, 2, 28)]
    """
    if isinstance(on, dt.datetime):
        on = on.date()
    return list(_listed_cached(on, int(horizon_days)))


def is_monthly(expiry: dt.date) -> bool:
    """True when ``expiry`` is a (holiday-shifted) third-Friday monthly expiry."""
    return previous_session_on_or_before(third_friday(expiry.year, expiry.month)) == expiry


def strike_grid(spot: float, step: float = 1.0, far_step: float = 5.0) -> np.ndarray:
    """Listed strikes around ``spot``: ``step`` ($1) in [0.85 S, 1.15 S], ``far_step`` ($5) out to
    [0.5 S, 1.5 S] (per underlying from config ``data.underlyings``).

    The fine band is the multiples of ``step`` in ``[0.85 S, 1.15 S]``; the coarse strikes are the
    multiples of ``far_step`` in ``[0.5 S, 1.5 S]`` outside it.  Strikes below $1 are dropped.

    >>> strike_grid(100.0)[[0, 1, 2, -1]].tolist()
    [50.0, 55.0, 60.0, 150.0]
    """
    if not (spot > 0 and math.isfinite(spot)):
        raise ValueError(f"spot must be positive and finite, got {spot}")
    if not (step > 0 and far_step >= step):
        raise ValueError(f"strike steps must satisfy 0 < step <= far_step, got {step}, {far_step}")
    lo1 = math.ceil(spot * (1 - FINE_BAND) / step - 1e-9)
    hi1 = math.floor(spot * (1 + FINE_BAND) / step + 1e-9)
    fine = np.round(np.arange(lo1, hi1 + 1, dtype=float) * step, 6)
    lo5 = math.ceil(spot * (1 - OUTER_BAND) / far_step - 1e-9)
    hi5 = math.floor(spot * (1 + OUTER_BAND) / far_step + 1e-9)
    coarse = np.round(np.arange(lo5, hi5 + 1, dtype=float) * far_step, 6)
    coarse = coarse[(coarse < lo1 * step - 1e-9) | (coarse > hi1 * step + 1e-9)]
    grid = np.union1d(fine, coarse)
    return grid[grid >= 1.0]
