"""Scheduled macro events as data: FOMC announcement days and US CPI release days.

Sources (the official calendars these dates were compiled from and spot-checked against):

* FOMC — Board of Governors of the Federal Reserve System, "Meeting calendars and
  information" (federalreserve.gov/monetarypolicy/fomccalendars.htm and the historical
  pages): the announcement day, i.e. the last day of each *regularly scheduled* meeting,
  1999-2026.  Unscheduled moves (2001-01-03, 2001-04-18, 2001-09-17, 2008-01-22,
  2008-10-08, 2020-03-03, 2020-03-15) are left out on purpose: no trader could have known
  them in advance, and a backtest gate must not either.  March 2020's scheduled meeting was
  replaced by the 03-15 emergency action, so 2020 lists seven.
* CPI — U.S. Bureau of Labor Statistics: the 08:30 ET release day of every monthly CPI news
  release, 1999-01-14 (December 1998 data) to 2026-08-12 (July 2026 data).  Each date is the one
  BLS encodes in the name of its archived release (bls.gov/news.release/history/cpi_MMDDYYYY.txt
  to 2008-01, bls.gov/news.release/archives/cpi_MMDDYYYY.htm after; index page
  bls.gov/bls/news-release/cpi.htm), as listed in a machine-readable manifest of that archive
  (GitHub dmidlo/histdata.com-tools, src/histdatacom/market_context/assets/
  us_cpi_archive_v1.json, whose every release date was checked against its file name) and, for
  1999, in a copy of the BLS index page in the same repository
  (us_cpi_release_index_v1.html.b64).  Spot-checked against dated contemporary reports (FRASER
  full texts of the December 1998 and April 1999 releases; CNN/Reuters/AP stories of 1999-2003
  release days).  2025-10-24 is the shutdown-delayed September release; October 2025 had none.
  (An earlier hand-compiled table had 13 wrong days in 2004-2007 and 2026-02-11 for 02-13.)

The gate rules live in the decision core (``strategies.gates.event_gate`` — no new entries
within N sessions before an event — and the ``EVENT`` exit, flat N sessions before); this
module turns the dates into the one number they read per session: ``sessions_to_event``
(0 on an event day, 1 on the session before, ...), counted on the NYSE calendar.  An event
on a non-session day counts on the next session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from data_factory.calendar import sessions

KINDS = ("fomc", "cpi")

# year -> "MM-DD" announcement days of regularly scheduled FOMC meetings
_FOMC: dict[int, str] = {
    1999: "02-03 03-30 05-18 06-30 08-24 10-05 11-16 12-21",
    2000: "02-02 03-21 05-16 06-28 08-22 10-03 11-15 12-19",
    2001: "01-31 03-20 05-15 06-27 08-21 10-02 11-06 12-11",
    2002: "01-30 03-19 05-07 06-26 08-13 09-24 11-06 12-10",
    2003: "01-29 03-18 05-06 06-25 08-12 09-16 10-28 12-09",
    2004: "01-28 03-16 05-04 06-30 08-10 09-21 11-10 12-14",
    2005: "02-02 03-22 05-03 06-30 08-09 09-20 11-01 12-13",
    2006: "01-31 03-28 05-10 06-29 08-08 09-20 10-25 12-12",
    2007: "01-31 03-21 05-09 06-28 08-07 09-18 10-31 12-11",
    2008: "01-30 03-18 04-30 06-25 08-05 09-16 10-29 12-16",
    2009: "01-28 03-18 04-29 06-24 08-12 09-23 11-04 12-16",
    2010: "01-27 03-16 04-28 06-23 08-10 09-21 11-03 12-14",
    2011: "01-26 03-15 04-27 06-22 08-09 09-21 11-02 12-13",
    2012: "01-25 03-13 04-25 06-20 08-01 09-13 10-24 12-12",
    2013: "01-30 03-20 05-01 06-19 07-31 09-18 10-30 12-18",
    2014: "01-29 03-19 04-30 06-18 07-30 09-17 10-29 12-17",
    2015: "01-28 03-18 04-29 06-17 07-29 09-17 10-28 12-16",
    2016: "01-27 03-16 04-27 06-15 07-27 09-21 11-02 12-14",
    2017: "02-01 03-15 05-03 06-14 07-26 09-20 11-01 12-13",
    2018: "01-31 03-21 05-02 06-13 08-01 09-26 11-08 12-19",
    2019: "01-30 03-20 05-01 06-19 07-31 09-18 10-30 12-11",
    2020: "01-29 04-29 06-10 07-29 09-16 11-05 12-16",
    2021: "01-27 03-17 04-28 06-16 07-28 09-22 11-03 12-15",
    2022: "01-26 03-16 05-04 06-15 07-27 09-21 11-02 12-14",
    2023: "02-01 03-22 05-03 06-14 07-26 09-20 11-01 12-13",
    2024: "01-31 03-20 05-01 06-12 07-31 09-18 11-07 12-18",
    2025: "01-29 03-19 05-07 06-18 07-30 09-17 10-29 12-10",
    2026: "01-28 03-18 04-29 06-17 07-29 09-16 10-28 12-09",
}

# year -> "MM-DD" CPI release days (08:30 ET)
_CPI: dict[int, str] = {
    1999: "01-14 02-19 03-18 04-13 05-14 06-16 07-15 08-17 09-15 10-19 11-17 12-14",
    2000: "01-14 02-18 03-17 04-14 05-16 06-14 07-18 08-16 09-15 10-18 11-16 12-15",
    2001: "01-17 02-21 03-21 04-17 05-16 06-15 07-18 08-16 09-18 10-19 11-16 12-14",
    2002: "01-16 02-20 03-21 04-16 05-15 06-18 07-19 08-16 09-18 10-18 11-19 12-17",
    2003: "01-16 02-21 03-21 04-16 05-16 06-17 07-16 08-15 09-16 10-16 11-18 12-16",
    2004: "01-15 02-20 03-17 04-14 05-14 06-15 07-16 08-17 09-16 10-19 11-17 12-17",
    2005: "01-19 02-23 03-23 04-20 05-18 06-15 07-14 08-16 09-15 10-14 11-16 12-15",
    2006: "01-18 02-22 03-16 04-19 05-17 06-14 07-19 08-16 09-15 10-18 11-16 12-15",
    2007: "01-18 02-21 03-16 04-17 05-15 06-15 07-18 08-15 09-19 10-17 11-15 12-14",
    2008: "01-16 02-20 03-14 04-16 05-14 06-13 07-16 08-14 09-16 10-16 11-19 12-16",
    2009: "01-16 02-20 03-18 04-15 05-15 06-17 07-15 08-14 09-16 10-15 11-18 12-16",
    2010: "01-15 02-19 03-18 04-14 05-19 06-17 07-16 08-13 09-17 10-15 11-17 12-15",
    2011: "01-14 02-17 03-17 04-15 05-13 06-15 07-15 08-18 09-15 10-19 11-16 12-16",
    2012: "01-19 02-17 03-16 04-13 05-15 06-14 07-17 08-15 09-14 10-16 11-15 12-14",
    2013: "01-16 02-21 03-15 04-16 05-16 06-18 07-16 08-15 09-17 10-30 11-20 12-17",
    2014: "01-16 02-20 03-18 04-15 05-15 06-17 07-22 08-19 09-17 10-22 11-20 12-17",
    2015: "01-16 02-26 03-24 04-17 05-22 06-18 07-17 08-19 09-16 10-15 11-17 12-15",
    2016: "01-20 02-19 03-16 04-14 05-17 06-16 07-15 08-16 09-16 10-18 11-17 12-15",
    2017: "01-18 02-15 03-15 04-14 05-12 06-14 07-14 08-11 09-14 10-13 11-15 12-13",
    2018: "01-12 02-14 03-13 04-11 05-10 06-12 07-12 08-10 09-13 10-11 11-14 12-12",
    2019: "01-11 02-13 03-12 04-10 05-10 06-12 07-11 08-13 09-12 10-10 11-13 12-11",
    2020: "01-14 02-13 03-11 04-10 05-12 06-10 07-14 08-12 09-11 10-13 11-12 12-10",
    2021: "01-13 02-10 03-10 04-13 05-12 06-10 07-13 08-11 09-14 10-13 11-10 12-10",
    2022: "01-12 02-10 03-10 04-12 05-11 06-10 07-13 08-10 09-13 10-13 11-10 12-13",
    2023: "01-12 02-14 03-14 04-12 05-10 06-13 07-12 08-10 09-13 10-12 11-14 12-12",
    2024: "01-11 02-13 03-12 04-10 05-15 06-12 07-11 08-14 09-11 10-10 11-13 12-11",
    2025: "01-15 02-12 03-12 04-10 05-13 06-11 07-15 08-12 09-11 10-24 12-18",
    2026: "01-13 02-13 03-11 04-10 05-12 06-10 07-14 08-12",
}


def _expand(table: dict[int, str]) -> tuple[dt.date, ...]:
    return tuple(dt.date(year, int(md[:2]), int(md[3:])) for year, row in sorted(table.items())
                 for md in row.split())


FOMC_DAYS: tuple[dt.date, ...] = _expand(_FOMC)
CPI_DAYS: tuple[dt.date, ...] = _expand(_CPI)
CPI_FIRST = CPI_DAYS[0]


def event_days(kinds: Iterable[str] = KINDS) -> tuple[dt.date, ...]:
    """Sorted unique event days of the given kinds ("fomc", "cpi")."""
    out: set[dt.date] = set()
    for kind in kinds:
        if kind == "fomc":
            out.update(FOMC_DAYS)
        elif kind == "cpi":
            out.update(CPI_DAYS)
        else:
            raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
    return tuple(sorted(out))


def sessions_to_event(days: Iterable[dt.date], kinds: Iterable[str] = KINDS) -> np.ndarray:
    """For each session day: NYSE sessions until the next event (0 on an event day, 1 the
    session before, ...); -1 when no listed event follows."""
    days = list(days)
    if not days:
        return np.zeros(0, dtype=np.int64)
    events = event_days(kinds)
    last = max(max(days), events[-1]) + dt.timedelta(days=10)
    cal = sessions(min(days), last).to_numpy().astype("datetime64[D]")
    ev = np.array(events, dtype="datetime64[D]")
    ev = ev[ev >= cal[0]]
    ev_pos = np.searchsorted(cal, ev, side="left")  # an event on a non-session counts on the next session
    ev_pos = np.unique(ev_pos[ev_pos < len(cal)])
    day_pos = np.searchsorted(cal, np.array(days, dtype="datetime64[D]"), side="left")
    k = np.searchsorted(ev_pos, day_pos, side="left")
    out = np.full(len(days), -1, dtype=np.int64)
    ok = k < len(ev_pos)
    out[ok] = ev_pos[k[ok]] - day_pos[ok]
    return out


def next_event(day: dt.date, kinds: Iterable[str] = KINDS) -> tuple[dt.date, str] | None:
    """The first event on or after ``day`` and its kind(s), e.g. ``(2018-03-13, "cpi")``."""
    kinds = tuple(kinds)
    for d in event_days(kinds):
        if d >= day:
            names = [k for k, days in (("fomc", FOMC_DAYS), ("cpi", CPI_DAYS)) if k in kinds and d in days]
            return d, "+".join(names)
    return None


def event_frame(start: dt.date, end: dt.date, kinds: Iterable[str] = KINDS) -> pd.DataFrame:
    """Events between ``start`` and ``end`` (for charts: the report's equity panel)."""
    kinds = tuple(kinds)
    rows = [(d, k) for k, ds in (("fomc", FOMC_DAYS), ("cpi", CPI_DAYS)) if k in kinds for d in ds
            if start <= d <= end]
    frame = pd.DataFrame(sorted(rows), columns=["date", "kind"])
    return frame
