"""Library functions behind ``--mode data`` (the argparse wiring lives in ``core/main.py``).

* ``describe(market)`` -- source, underlying, date coverage, proxy flags, notes;
* ``chain_table(market, date, time, dte_min, dte_max, fmt)`` -- one chain snapshot: bid, ask, mid,
  IV, delta, gamma, theta (per day), vega (per vol point), volume, open interest, underlying price;
* ``bars_table(market, date, tf, fmt)`` -- the bars of one day (``tf`` minutes, or "D");
* ``export(market, start, end, out)`` -- vendor files readable by ``FilesMarket``.

Formats: ``table`` (rich, rendered to text without colour), ``csv``, ``json`` (records).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from core.dto import DataError
from data_factory.base import MarketSource
from data_factory.export import export_market, snapshot_frame

FORMATS = ("table", "csv", "json")
CHAIN_COLUMNS = ("expiration", "dte", "strike", "option_type", "bid", "ask", "mid", "implied_volatility", "delta",
                 "gamma", "theta", "vega", "volume", "open_interest", "underlying_price")
_DIGITS = {"strike": 2, "bid": 2, "ask": 2, "mid": 3, "implied_volatility": 4, "delta": 4, "gamma": 5, "theta": 4,
           "vega": 4, "underlying_price": 2, "open": 2, "high": 2, "low": 2, "close": 2}


def _day(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"date '{value}' is invalid; use YYYY-MM-DD") from None


def describe(market: MarketSource) -> str:
    """Human summary of a market source: provenance, coverage and proxy flags."""
    info = market.info
    lines = [f"source: {info.name} ({info.underlying})",
             f"coverage: {info.first_date} .. {info.last_date}",
             f"intraday bars: {'synthesised' if info.intraday_synthetic else 'observed'}",
             f"option chains: {'modelled' if info.chains_modelled else 'observed quotes'}",
             f"VIX proxy until: {info.vix_proxy_until or 'never (real VIX)'}"]
    try:
        vix = market.vix(info.first_date, info.last_date)
        proxied = int(vix["is_proxy"].sum())
        lines.append(f"VIX: {len(vix)} days {vix.index[0].date() if len(vix) else '-'} .. "
                     f"{vix.index[-1].date() if len(vix) else '-'}, {proxied} proxy days")
    except DataError as exc:
        lines.append(f"VIX: unavailable ({exc})")
    lines += _vendor_coverage(market)
    lines += [f"note: {n}" for n in info.notes]
    return "\n".join(lines)


def _vendor_coverage(market: MarketSource) -> list[str]:
    """Days shared by the spot and options files (vendor sources only)."""
    common_days = getattr(market, "common_days", None)
    if common_days is None:
        return []
    try:
        days = common_days()
    except DataError as exc:
        return [f"days in both spot and options files: none ({exc})"]
    if len(days) == 0:
        return ["days in both spot and options files: none; choose files that overlap"]
    return [f"days in both spot and options files: {len(days)} ({days[0].date()} .. {days[-1].date()})"]


def _render(frame: pd.DataFrame, fmt: str, title: str) -> str:
    if fmt not in FORMATS:
        raise DataError(f"format '{fmt}' is invalid; use one of {', '.join(FORMATS)}")
    frame = frame.assign(**{str(c): _iso(frame[c]) for c in frame.columns
                            if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)})
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", indent=1)
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(col, value) for col, value in zip(frame.columns, row, strict=True)))
    buffer = io.StringIO()
    Console(file=buffer, width=max(120, 12 * len(frame.columns)), color_system=None, force_terminal=False).print(table)
    return buffer.getvalue()


def _iso(values: pd.Series) -> pd.Series:
    """ISO text in the values' own time zone (New York for bars); bare dates for midnight-only naive values."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype) and bool((values == values.dt.normalize()).all()):
        return values.dt.strftime("%Y-%m-%d")
    return values.map(lambda t: t.isoformat())


def _cell(column: str, value: object) -> str:
    if isinstance(value, float):
        return f"{value:.{_DIGITS.get(column, 0)}f}" if value == value else "nan"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _day_bars(market: MarketSource, day: dt.date, minutes: int) -> pd.DataFrame:
    """Intraday bars of ``day``; daily-only file sources give their daily bar instead."""
    try:
        bars = market.intraday_bars(day, day, minutes)
    except DataError:
        if not getattr(market, "is_daily", False):
            raise
        bars = market.daily_bars(day, day)
    if bars.empty:
        raise DataError(f"no bars on {day}; choose a session between {market.info.first_date} and "
                        f"{market.info.last_date}")
    return bars


def chain_table(market: MarketSource, date: dt.date | str, time: str = "10:00", dte_min: int = 0,
                dte_max: int = 60, fmt: str = "table") -> str:
    """The option chain at ``date time`` (New York bar label) with ``dte_min <= dte <= dte_max``."""
    day = _day(date)
    bars = _day_bars(market, day, 5)
    if bars.index.tz is None:
        ts = bars.index[0]  # daily file: the end-of-day snapshot
    else:
        try:
            ts = pd.Timestamp(f"{day} {time}").tz_localize("America/New_York")
        except ValueError:
            raise DataError(f"time '{time}' is invalid; use HH:MM (New York)") from None
        if ts not in bars.index:
            raise DataError(f"no 5-minute bar at {time} on {day}; choose a time between "
                            f"{bars.index[0]:%H:%M} and {bars.index[-1]:%H:%M} on the 5-minute grid")
    snap = market.chains(bars.loc[[ts]]).snapshot(ts, dte_min, dte_max)  # the chain is judged at ts only
    frame = snapshot_frame(snap)
    frame["mid"] = 0.5 * (frame["bid"] + frame["ask"])
    frame = frame.loc[:, list(CHAIN_COLUMNS)].assign(expiration=frame["expiration"].astype(str))
    title = f"{snap.underlying} chain at {pd.Timestamp(snap.ts).isoformat()}  spot {snap.spot:.2f}"
    return _render(frame, fmt, title)


def bars_table(market: MarketSource, date: dt.date | str, tf: int | str = 5, fmt: str = "table") -> str:
    """The bars of one day: ``tf`` minutes (1, 5, 15, 60, ...) or ``"D"`` for the daily bar."""
    day = _day(date)
    if str(tf).upper() in ("D", "1D", "DAILY"):
        bars = market.daily_bars(day, day)
    else:
        try:
            minutes = int(tf)
        except ValueError:
            raise DataError(f"timeframe '{tf}' is invalid; use minutes (1, 5, 15, 60) or D") from None
        bars = _day_bars(market, day, minutes)
    frame = bars.reset_index()
    frame = frame.rename(columns={frame.columns[0]: "ts"})
    return _render(frame, fmt, f"{market.info.underlying} bars on {day} ({tf})")


def export(market: MarketSource, start: dt.date | str, end: dt.date | str, out: str | Path, minutes: int = 5,
           dte_max: int = 60, chain_times: tuple[str, ...] | None = ("10:00", "15:30")) -> str:
    """Export bars, chains and VIX of ``start..end`` to the folder ``out``; returns a one-line summary."""
    first, last = _day(start), _day(end)
    if first > last:
        raise DataError(f"export start {first} is after end {last}; swap them")
    return export_market(market, first, last, out, minutes, dte_max, chain_times).summary()
