"""Library functions behind ``--mode data`` (the argparse wiring lives in ``core/main.py``).

* ``describe(market)`` -- source, underlying, date coverage, proxy flags, notes; for vendor files
  it validates every row first (the same validator as every run), so it is a pre-flight check;
* ``chain_table(market, date, time, dte_min, dte_max, fmt, strikes)`` -- one chain snapshot: bid,
  ask, mid, IV, delta, gamma, theta (per day), vega (per vol point), volume, open interest,
  underlying price -- built from the same market state the backtest trades (the bars of the
  warm-up window before the day, so the previous close and the VIX path are the engine's);
  ``strikes`` = N keeps N strikes either side of spot per expiry (default 10 in the table, all in
  csv / json), ``"all"`` keeps all;
* ``bars_table(market, date | start..end, tf, fmt)`` -- bars (``tf`` minutes, or "D");
* ``export(market, start, end, out)`` -- vendor files readable by ``FilesMarket``;
* ``run_data_command(cfg, ns)`` -- the whole ``--mode data`` command from the parsed arguments.

Formats: ``table`` (rich, fitted to the terminal width), ``csv``, ``json`` (records).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from core.dto import ConfigError, DataError
from data_factory.base import ChainSource, MarketSource
from data_factory.export import export_market, snapshot_frame
from data_factory.market_window import chain_window
from data_factory.out_folder import check_target

FORMATS = ("table", "csv", "json")
CHAIN_COLUMNS = ("expiration", "dte", "strike", "option_type", "bid", "ask", "mid", "implied_volatility", "delta",
                 "gamma", "theta", "vega", "volume", "open_interest", "underlying_price")
TABLE_HEADERS = {"expiration": "expiry", "option_type": "type", "implied_volatility": "IV", "open_interest": "OI",
                 "underlying_price": "spot", "volume": "vol"}
# columns given up first when the table is wider than the terminal
DROP_ORDER = ("underlying_price", "open_interest", "volume", "gamma", "vega", "theta", "mid", "dte")
DEFAULT_STRIKES = 10
_DIGITS = {"strike": 2, "bid": 2, "ask": 2, "mid": 3, "implied_volatility": 4, "delta": 4, "gamma": 5, "theta": 4,
           "vega": 4, "underlying_price": 2, "open": 2, "high": 2, "low": 2, "close": 2}
DATA_COMMANDS = ("describe", "chain", "bars", "export", "expand", "download", "pipeline")


def _day(value: dt.date | str, option: str = "--date") -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{option} '{value}' is invalid; use YYYY-MM-DD") from None


def describe(market: MarketSource) -> str:
    """Human summary of a market source: provenance, coverage and proxy flags (vendor files are validated)."""
    info = market.info
    validate_all = getattr(market, "validate_all", None)
    verdict = validate_all() if callable(validate_all) else None  # DataError on the first bad row
    info = market.info  # validation may add notes (dropped quotes)
    options = getattr(market, "options_path", "modelled")
    chains = "modelled" if info.chains_modelled else ("observed quotes" if options else "none (no --options-data)")
    lines = [f"source: {info.name} ({info.underlying})",
             f"coverage: {info.first_date} .. {info.last_date}",
             f"intraday bars: {'synthesised' if info.intraday_synthetic else 'observed'}",
             f"option chains: {chains}",
             f"VIX proxy until: {info.vix_proxy_until or 'never (real VIX)'}"]
    try:
        vix = market.vix(info.first_date, info.last_date)
        proxied = int(vix["is_proxy"].sum())
        lines.append(f"VIX: {len(vix)} days {vix.index[0].date() if len(vix) else '-'} .. "
                     f"{vix.index[-1].date() if len(vix) else '-'}, {proxied} proxy days")
    except DataError as exc:
        lines.append(f"VIX: unavailable ({exc})")
    try:
        from data_factory.stale_opens import describe_line

        lines.append(describe_line(market.daily_bars(info.first_date, info.last_date)))
    except DataError as exc:
        lines.append(f"stale opens: unknown ({exc})")
    lines += _vendor_coverage(market)
    if verdict:
        lines.append(f"validation: {verdict}")
    lines += [f"note: {n}" for n in info.notes]
    return "\n".join(lines)


def _vendor_coverage(market: MarketSource) -> list[str]:
    """Days shared by the spot and options files (vendor sources with an options file only)."""
    common_days = getattr(market, "common_days", None)
    if common_days is None or getattr(market, "options_path", None) is None:
        return []
    days = common_days()
    if len(days) == 0:
        return ["days in both spot and options files: none; choose files that overlap"]
    return [f"days in both spot and options files: {len(days)} ({days[0].date()} .. {days[-1].date()})"]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DataError(f"format '{fmt}' is invalid; use one of {', '.join(FORMATS)}")


def _render(frame: pd.DataFrame, fmt: str, title: str, width: int | None = None,
            droppable: tuple[str, ...] = ()) -> str:
    _check_format(fmt)
    frame = frame.assign(**{str(c): _iso(frame[c]) for c in frame.columns
                            if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)})
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", indent=1)
    cells = {str(c): [_cell(str(c), v) for v in frame[c].tolist()] for c in frame.columns}
    width = width or shutil.get_terminal_size((120, 40)).columns
    columns = _fit_columns(cells, width, droppable)
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(TABLE_HEADERS.get(col, col), justify="right", no_wrap=True)
    for i in range(len(frame)):
        table.add_row(*(cells[col][i] for col in columns))
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(table)
    return buffer.getvalue()


def _fit_columns(cells: dict[str, list[str]], width: int, droppable: tuple[str, ...]) -> list[str]:
    """Columns to show: drop ``droppable`` ones in order until the table fits ``width`` characters."""
    columns = list(cells)

    def needed(cols: list[str]) -> int:
        return 1 + sum(3 + max([len(TABLE_HEADERS.get(c, c)), *map(len, cells[c])]) for c in cols)

    for name in droppable:
        if needed(columns) <= width:
            break
        if name in columns:
            columns.remove(name)
    return columns


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


def _day_bars(market: MarketSource, first: dt.date, last: dt.date, minutes: int) -> pd.DataFrame:
    """Intraday bars of ``first..last``; daily-only file sources give their daily bars instead."""
    try:
        bars = market.intraday_bars(first, last, minutes)
    except DataError:
        if not getattr(market, "is_daily", False):
            raise
        bars = market.daily_bars(first, last)
    if bars.empty:
        span = f"on {first}" if first == last else f"between {first} and {last}"
        why = " (a weekend)" if all(d.weekday() >= 5 for d in _days(first, last)) else ""
        raise DataError(f"no sessions {span}{why}; choose trading days between {market.info.first_date} and "
                        f"{market.info.last_date}")
    return bars


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)][:14]


def _chain_source_at(market: MarketSource, day: dt.date) -> tuple[pd.DataFrame, ChainSource]:
    """The engine's chain source for ``day``: built over the backtest's warm-up window and the day."""
    return chain_window(market, day, day, 5)


def _strike_window(frame: pd.DataFrame, spot: float, strikes: int | str | None) -> pd.DataFrame:
    """The ``strikes`` listed strikes either side of spot per expiry (all for ``"all"``)."""
    n = _strike_count(strikes)
    if n is None or frame.empty:
        return frame
    keep = []
    for _, rows in frame.groupby("expiration", sort=False):
        listed = sorted(rows["strike"].unique())
        below = [k for k in listed if k <= spot][-n:]
        above = [k for k in listed if k > spot][:n]
        keep.append(rows.loc[rows["strike"].isin(below + above)])
    return pd.concat(keep).reset_index(drop=True)


def _strike_count(strikes: int | str | None) -> int | None:
    if strikes is None:
        return DEFAULT_STRIKES
    if str(strikes).strip().lower() == "all":
        return None
    try:
        n = int(str(strikes))
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"--strikes {strikes!r}: use a positive number of strikes either side of spot, or 'all'")
    return n


def _nothing_matches(chains: object, ts: pd.Timestamp, day: dt.date, dte_min: int, dte_max: int) -> DataError:
    listed = chains.expiries(ts)  # type: ignore[attr-defined]  # ChainSource protocol
    if not listed:
        return DataError(f"no option quotes at {ts:%Y-%m-%d %H:%M} New York; choose a time after the first "
                         "snapshot of the day")
    dtes = sorted((e - day).days for e in listed)
    below = [d for d in dtes if d < dte_min]
    above = [d for d in dtes if d > dte_max]
    near = ", ".join(f"{d} DTE ({day + dt.timedelta(days=d)})" for d in (below[-1:] + above[:1]))
    return DataError(f"no expiry with {dte_min} <= DTE <= {dte_max} at {ts:%Y-%m-%d %H:%M}; nearest: {near}; "
                     "widen --dte-min/--dte-max")


def chain_frame(market: MarketSource, date: dt.date | str, time: str = "10:00", dte_min: int = 0,
                dte_max: int = 60, strikes: int | str | None = "all") -> tuple[pd.DataFrame, str]:
    """The chain at ``date time`` as rows (``CHAIN_COLUMNS``) and its title; see ``chain_table``."""
    day = _day(date)
    bars, chains = _chain_source_at(market, day)
    today = bars.loc[_local_days(bars.index) == pd.Timestamp(day)]
    if today.empty:
        raise DataError(f"no bars on {day}; choose a session between {market.info.first_date} and "
                        f"{market.info.last_date}")
    if today.index.tz is None:
        ts = today.index[-1]  # daily file: the end-of-day snapshot
    else:
        try:
            ts = pd.Timestamp(f"{day} {time}").tz_localize("America/New_York")
        except ValueError:
            raise DataError(f"--time '{time}' is invalid; use HH:MM (New York)") from None
        if ts not in today.index:
            raise DataError(f"no 5-minute bar at {time} on {day}; choose a time between "
                            f"{today.index[0]:%H:%M} and {today.index[-1]:%H:%M} on the 5-minute grid")
    snap = chains.snapshot(ts, dte_min, dte_max)
    if not snap.slices:
        raise _nothing_matches(chains, ts, day, dte_min, dte_max)
    frame = snapshot_frame(snap)
    frame["mid"] = 0.5 * (frame["bid"] + frame["ask"])
    frame = frame.loc[:, list(CHAIN_COLUMNS)].assign(expiration=frame["expiration"].astype(str))
    frame = _strike_window(frame, float(snap.spot), strikes)
    title = f"{snap.underlying} chain at {pd.Timestamp(snap.ts).isoformat()}  spot {snap.spot:.2f}"
    return frame, title


def _local_days(index: pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_convert("America/New_York").tz_localize(None) if idx.tz is not None else idx).normalize()


def chain_table(market: MarketSource, date: dt.date | str, time: str = "10:00", dte_min: int = 0,
                dte_max: int = 60, fmt: str = "table", strikes: int | str | None = None,
                width: int | None = None) -> str:
    """The option chain at ``date time`` (New York bar label) with ``dte_min <= dte <= dte_max``.

    ``strikes``: N strikes either side of spot per expiry or ``"all"``; default 10 for the table,
    all for csv / json.  The table drops its least important columns until it fits ``width``
    (default: the terminal's).
    """
    _check_format(fmt)
    if strikes is None and fmt != "table":
        strikes = "all"  # machine formats keep every strike unless asked
    frame, title = chain_frame(market, date, time, dte_min, dte_max, strikes)
    return _render(frame, fmt, title, width, DROP_ORDER)


def bars_table(market: MarketSource, date: dt.date | str | None = None, tf: int | str = 5, fmt: str = "table",
               start: dt.date | str | None = None, end: dt.date | str | None = None) -> str:
    """Bars of one day (``date``) or of ``start..end``: ``tf`` minutes (1, 5, 15, 60, ...) or ``"D"``."""
    _check_format(fmt)
    first, last = _bar_range(date, start, end)
    if str(tf).upper() in ("D", "1D", "DAILY"):
        bars = market.daily_bars(first, last)
        if bars.empty:
            raise DataError(f"no sessions between {first} and {last}; choose trading days between "
                            f"{market.info.first_date} and {market.info.last_date}")
    else:
        try:
            minutes = int(tf)
        except ValueError:
            raise DataError(f"--tf '{tf}' is invalid; use minutes (1, 5, 15, 60) or D") from None
        if minutes < 1:
            raise DataError(f"--tf '{tf}' is invalid; use minutes (1, 5, 15, 60) or D")
        bars = _day_bars(market, first, last, minutes)
    frame = bars.reset_index()
    frame = frame.rename(columns={frame.columns[0]: "ts"})
    span = f"on {first}" if first == last else f"{first} .. {last}"
    return _render(frame, fmt, f"{market.info.underlying} bars {span} ({tf})")


def _bar_range(date: dt.date | str | None, start: dt.date | str | None,
               end: dt.date | str | None) -> tuple[dt.date, dt.date]:
    if date is not None and (start is not None or end is not None):
        raise ConfigError("--mode data bars: give --date D or --start D --end D, not both")
    if date is not None:
        day = _day(date)
        return day, day
    if start is None and end is None:
        raise ConfigError("--mode data bars needs --date YYYY-MM-DD or --start D --end D")
    first = _day(start if start is not None else end, "--start" if start is not None else "--end")  # type: ignore[arg-type]
    last = _day(end, "--end") if end is not None else first
    if first > last:
        raise ConfigError(f"--start {first} is after --end {last}; swap them")
    return first, last


def export(market: MarketSource, start: dt.date | str, end: dt.date | str, out: str | Path, minutes: int = 5,
           dte_max: int = 60, chain_times: tuple[str, ...] | None = ("10:00", "15:30"), force: bool = False) -> str:
    """Export bars, chains and VIX of ``start..end`` to the folder ``out``; returns a one-line summary."""
    first, last = _day(start, "--start"), _day(end, "--end")
    if first > last:
        raise DataError(f"export start {first} is after end {last}; swap them")
    return export_market(market, first, last, out, minutes, dte_max, chain_times, force=force).summary()


def _flag(ns: argparse.Namespace, name: str, default: Any = None) -> Any:
    """An argument ``core/main.py`` may or may not define yet."""
    return getattr(ns, name, default)


def run_data_command(cfg: Any, ns: argparse.Namespace, build_market: Callable[[], MarketSource]) -> int:
    """``--mode data describe | chain | bars | export`` from the parsed arguments; prints the result.

    ``build_market`` makes the configured source (``lambda: core.backtest.market.build_market(cfg)``);
    it is passed in because ``core.backtest`` imports ``core.modes`` (no import cycle).
    """
    command = ns.command or "describe"
    if command not in DATA_COMMANDS:
        raise ConfigError(f"--mode data {command!r}: choose describe, chain, bars, export, expand, download or "
                          "pipeline")
    if command == "pipeline":
        from core.modes.pipeline import PipelineSettings, run_pipeline

        print(run_pipeline(PipelineSettings.from_config(cfg), progress=bool(cfg.run.progress)), end="")
        return 0
    if command == "download":
        print(download(cfg, ns).summary())
        return 0
    if command == "expand":
        print(expand(cfg, ns).summary())
        return 0
    force = bool(_flag(ns, "force", False) or getattr(cfg.run, "force", False))
    if command == "export":
        if not (ns.start and ns.end and cfg.run.out):
            raise ConfigError("--mode data export needs --start D --end D --out DIR")
        check_target(cfg.run.out, force)  # refuse before any work
    market = build_market()
    fmt = _flag(ns, "fmt", "table")
    if command == "describe":
        text = describe(market)
    elif command == "chain":
        if not ns.date:
            raise ConfigError("--mode data chain needs --date YYYY-MM-DD")
        given = bool(_flag(ns, "dte_given", False))
        text = chain_table(market, ns.date, _flag(ns, "time", "10:00"), cfg.strategy.dte_min if given else 0,
                           cfg.strategy.dte_max if given else 60, fmt, _flag(ns, "strikes", None))
    elif command == "bars":
        text = bars_table(market, ns.date, _flag(ns, "tf", 5), fmt, _flag(ns, "start"), _flag(ns, "end"))
    else:
        text = f"exported to {export(market, ns.start, ns.end, cfg.run.out, force=force)}"
    print(text)
    return 0


def expand(cfg: Any, ns: argparse.Namespace) -> Any:
    """``--mode data expand --options EOD_FILE --spot INTRADAY_FILE --tf 1|5 --out DIR [--start D --end D]``:
    modelled intraday quotes from end-of-day snapshots and real intraday spot (``data_factory.expand``)."""
    from data_factory.expand import expand_chains
    from data_factory.vendor import FilesMarket

    options = _flag(ns, "options", None) or cfg.data.options_data
    spot = _flag(ns, "spot", None) or cfg.data.spot_data
    if not (isinstance(options, str) and spot and cfg.run.out):
        raise ConfigError("--mode data expand needs --options EOD_FILE --spot INTRADAY_FILE --out DIR")
    tf = str(_flag(ns, "tf", "5"))
    if tf not in ("1", "5"):
        raise ConfigError(f"--tf {tf!r}: expand writes 1- or 5-minute quotes; use --tf 1 or --tf 5")
    force = bool(_flag(ns, "force", False) or getattr(cfg.run, "force", False))
    check_target(cfg.run.out, force)  # refuse before any work
    market = FilesMarket(spot, options, cfg.strategy.underlying, rate=cfg.data.rate, div_yield=cfg.data.dividend_yield)
    if market.is_daily:
        raise ConfigError(f"--spot {spot}: holds daily bars; expand needs intraday spot bars (1 or 5 minutes)")
    start = _date(_flag(ns, "start", None), "--start") or market.info.first_date
    end = _date(_flag(ns, "end", None), "--end") or market.info.last_date
    if start > end:
        raise ConfigError(f"--start {start} is after --end {end}")
    bars = market.intraday_bars(start, end, int(tf))
    chain = market._chain_rows(start - dt.timedelta(days=10), end)  # the snapshot before the first session too
    return expand_chains(chain, bars, cfg.run.out, cfg.strategy.underlying, cfg.data.rate, cfg.data.dividend_yield,
                         dte_max=cfg.strategy.dte_max if _flag(ns, "dte_given", False) else 60, force=force)


def _date(value: Any, flag: str) -> Any:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: not a date; use YYYY-MM-DD") from None


def download(cfg: Any, ns: argparse.Namespace) -> Any:
    """``--mode data download --source alpaca --symbols SPY[,QQQ] --start D --end D --timeframe TF --out DIR
    [--options]`` (``data_factory.alpaca_download``)."""
    from data_factory.alpaca_download import download as fetch

    if _flag(ns, "dl_source", None) != "alpaca":
        raise ConfigError("--mode data download needs --source alpaca")
    symbols = [s.strip().upper() for s in str(_flag(ns, "symbols", "") or "").split(",") if s.strip()]
    start, end = _date(_flag(ns, "start", None), "--start"), _date(_flag(ns, "end", None), "--end")
    if not (symbols and start and end and cfg.run.out and _flag(ns, "timeframe", None)):
        raise ConfigError("--mode data download needs --symbols S --start D --end D --timeframe TF --out DIR")
    return fetch(symbols, start, end, str(ns.timeframe), cfg.run.out, options=_flag(ns, "options", None) is True,
                 url=_flag(ns, "data_url", None), progress=bool(cfg.run.progress))
