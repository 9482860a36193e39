"""Vendor files as a market source: ``FilesMarket`` (bars + option chains + VIX from CSV/Parquet).

File layouts (column names are case-insensitive; ``column_map={"file name": "standard name"}``
renames anything else; unknown columns are ignored):

**Bars** (``--spot-data``, CSV or Parquet), one row per bar, sorted by time:

* Alpaca export: ``timestamp, open, high, low, close, volume, trade_count, vwap`` (or the API's
  short keys ``t, o, h, l, c, v, n, vw``).  ``timestamp`` is the bar's **start** time (ISO 8601,
  UTC ``Z`` as Alpaca writes it); it is relabelled to the bar's close time.
* Generic: ``ts`` | ``datetime`` | ``date`` | ``time``, then ``open, high, low, close, volume``.
  These times are the bar's **close** time (the project convention: 09:35 = 09:30-09:35 bar).
* Naive times are New York local.  A file whose times are all midnight holds daily bars.
  The bar length is the most common step within a day (or ``bar_minutes``); ``bar_label=
  "start"|"end"`` overrides the convention above.  ``trade_count`` and ``vwap`` are optional.

**Option chains** (``--options-data``), optopsy / IVolatility style, one row per contract and
quote time, sorted by quote time:

* required ``quote_date`` (date for end-of-day files, stamped 16:00; or a timestamp;
  alias ``quote_datetime``), ``expiration``, ``strike``, ``option_type`` (call/put/c/p),
  ``bid``, ``ask``, ``underlying_price`` (alias ``underlying_last``);
* optional ``implied_volatility`` (decimal, 0.18 = 18%), ``delta``, ``gamma``, ``theta`` (per
  calendar day), ``vega`` (per volatility point), ``volume``, ``open_interest``,
  ``underlying_symbol``.  Missing IV is inverted from the mid and missing Greeks are computed
  with ``analytics.pricing`` (see ``data_factory.vendor_chains``); missing volume / open
  interest stay NaN.

**VIX** (``vix_path``, optional): ``date, vix`` (or ``close``), optional ``is_proxy``.  Without it
the VIX is a proxy: the 30-day ATM implied volatility of the option file (``is_proxy`` True,
``SourceInfo.vix_proxy_until`` = last date).

Files are read by date range (``data_factory.vendor_io``), never whole; every read passes
``data_factory.validation``.  Intraday bars cannot be made from a daily spot file (DataError);
coarser bars are resampled from the file's bar length with ``data_factory.bars``.  Chains are
aligned to the bars they serve with ``data_factory.alignment`` (lag limits, stale abort).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.bars import daily_from_intraday, resample_bars
from data_factory.base import BAR_COLUMNS, DEFAULTS, SourceInfo
from data_factory.calendar import session_bounds
from data_factory.expand_meta import is_expanded
from data_factory.validation import (
    check_underlying,
    no_quote_mask,
    parse_times,
    session_check,
    validate_bars,
    validate_chain,
    validate_times,
)
from data_factory.vendor_chains import VendorChainSource, prepare_chain, vix_proxy
from data_factory.vendor_io import (
    HEAD_ROWS,
    START_LABELLED,
    RowFilter,
    Validator,
    local_days,
    read_range,
)

PROXY_COLUMNS = ("quote_date", "expiration", "strike", "option_type", "bid", "ask", "underlying_price",
                 "implied_volatility")


def _bar_minutes(local: pd.DatetimeIndex) -> int | None:
    """Most common positive step (minutes) between bars of the same day; None without one."""
    ns = local.tz_localize(None).as_unit("ns").asi8
    same_day = local.tz_localize(None).normalize().asi8
    step = np.diff(ns)[(np.diff(same_day) == 0) & (np.diff(ns) > 0)]
    if step.size == 0:
        return None
    values, counts = np.unique(step // 60_000_000_000, return_counts=True)
    return int(values[np.argmax(counts)])


def _near_the_money(chunk: pd.DataFrame) -> np.ndarray:
    """Rows within 10% of the underlying in log-moneyness (unreadable rows are kept for the validator)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moneyness = np.log(pd.to_numeric(chunk["strike"], errors="coerce").to_numpy(float)
                           / pd.to_numeric(chunk["underlying_price"], errors="coerce").to_numpy(float))
    return ~(np.abs(moneyness) > 0.10)


def _quoted(frame: pd.DataFrame) -> np.ndarray:
    """Rows with a market (see ``validation.no_quote_mask``)."""
    return ~no_quote_mask(frame)


def _first_non_session(days: pd.DatetimeIndex) -> int:
    """Position of the first day that is not an NYSE session."""
    for day in days.unique():
        try:
            session_bounds(pd.DatetimeIndex([day]))
        except DataError:
            return int(np.flatnonzero(days == day)[0])
    return 0


class FilesMarket:
    """``MarketSource`` over vendor files (layouts in the module docstring)."""

    def __init__(self, spot_path: str | Path, options_path: str | Path | None = None,
                 underlying: str = DEFAULTS.strategy.underlying, column_map: dict[str, str] | None = None,
                 rate: float = DEFAULTS.data.rate, div_yield: float = DEFAULTS.data.dividend_yield, *,
                 vix_path: str | Path | None = None, bar_label: str | None = None, bar_minutes: int | None = None,
                 max_lag_seconds: float | None = None,
                 max_stale_fraction: float = DEFAULTS.data.chain_max_stale_fraction) -> None:
        self.spot_path = Path(spot_path)
        self.options_path = Path(options_path) if options_path else None
        self.vix_path = Path(vix_path) if vix_path else None
        self.underlying, self.column_map = underlying, dict(column_map or {})
        self.rate, self.div_yield = rate, div_yield
        self.max_lag_seconds, self.max_stale_fraction = max_lag_seconds, max_stale_fraction
        if bar_label not in (None, "start", "end"):
            raise DataError(f"bar_label '{bar_label}' is invalid; use 'start' or 'end'")
        for path in (self.spot_path, self.options_path, self.vix_path):
            if path is not None and not path.is_file():
                raise DataError(f"{path}: file not found; check the path")
        self._head_check()
        times = read_range(self.spot_path, "bars", column_map=self.column_map, columns=("ts",),
                           validate=self._time_validator(self.spot_path, "ts"))
        self._start_labelled = (bar_label == "start") if bar_label else times.time_source.lower() in START_LABELLED
        local = pd.DatetimeIndex(self._to_local(times.frame["ts"]))
        if local.empty:
            raise DataError(f"{self.spot_path.name}: no bars in the file (only a header); check the file")
        if local.isna().any():
            line = int(times.rows[np.flatnonzero(local.isna())[0]])
            raise DataError(f"{self.spot_path.name}: {times.row_word} {line}, column '{times.time_source}': "
                            "not a New York time (it falls in a daylight-saving gap or overlap); use UTC offsets")
        self.is_daily = bool(np.all(local.tz_localize(None) == local.tz_localize(None).normalize()))
        self.bar_minutes = None if self.is_daily else (bar_minutes or _bar_minutes(local))
        if not self.is_daily and not self.bar_minutes:
            raise DataError(f"{self.spot_path.name}: cannot infer the bar length (one bar per day?); pass bar_minutes")
        days = local.tz_localize(None).normalize()
        expanded = self.options_path is not None and is_expanded(self.options_path)
        notes = self._notes()
        if expanded:
            notes = (*notes, f"options: {self.options_path.name} holds MODELLED intraday quotes expanded from "  # type: ignore[union-attr]
                     "end-of-day snapshots (data expand), not observed ones")
        self.info = SourceInfo(
            name="files", underlying=underlying, first_date=days.min().date(), last_date=days.max().date(),
            intraday_synthetic=False, vix_proxy_until=None if self.vix_path else days.max().date(),
            chains_modelled=expanded, notes=notes)
        self._chain_cache: dict[tuple[dt.date, dt.date], pd.DataFrame] = {}
        self.dropped_quotes = 0  # chain rows without a market (bid and ask empty or 0), noted in ``info.notes``
        self._dropped_rows: set[int] = set()
        if self.options_path is not None:
            read_range(self.options_path, "chain", column_map=self.column_map, max_rows=HEAD_ROWS,
                       row_filter=_quoted, validate=self._chain_validator(self.options_path))
        self._apply_export_manifest()

    @classmethod
    def from_export(cls, folder: str | Path, **kwargs: object) -> FilesMarket:
        """Open a folder written by ``data_factory.export.export_market`` (reads its ``manifest.json``)."""
        root = Path(folder)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(f"{root}: no manifest.json; point at a folder written by --mode data export")
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
            kwargs.setdefault("bar_minutes", m["minutes"])
            spot, options, underlying = root / m["bars_file"], root / m["chains_file"], str(m["underlying"])
            rate, div_yield, vix = float(m["rate"]), float(m["div_yield"]), root / m["vix_file"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{manifest_path}: not a manifest written by --mode data export ({type(exc).__name__}: "
                            f"{str(exc)[:60]}); export the folder again") from None
        return cls(spot, options, underlying, rate=rate, div_yield=div_yield, vix_path=vix,
                   **kwargs)  # type: ignore[arg-type]

    def _notes(self) -> tuple[str, ...]:
        notes = [f"spot: {self.spot_path}"]
        notes.append(f"options: {self.options_path}" if self.options_path else "options: none (no chains)")
        notes.append(self.vix_note())
        return tuple(notes)

    def vix_note(self) -> str:
        """What the run's VIX is, truthfully, for this source."""
        if self.vix_path is not None:
            return f"VIX: read from {self.vix_path.name} (its is_proxy column flags proxy days)"
        if self.options_path is not None:
            return (f"VIX: proxy = 30-day ATM implied volatility of {self.options_path.name} "
                    "(not the CBOE VIX; flagged is_proxy)")
        return "VIX: none (no VIX file and no options file to derive a proxy from)"

    def _head_check(self) -> None:
        """Full validation of the first rows: a junk file of any size fails here, in milliseconds."""
        rr = read_range(self.spot_path, "bars", column_map=self.column_map, max_rows=HEAD_ROWS)
        validate_bars(rr.frame, self.spot_path.name, rr.rows, rr.row_word)

    @staticmethod
    def _time_validator(path: Path, column: str, strict: bool = True) -> Validator:
        def check(frame: pd.DataFrame, rows: np.ndarray, row_word: str) -> None:
            validate_times(frame, column, path.name, rows, row_word, strict)
        return check

    def _bar_validator(self) -> Validator:
        def check(frame: pd.DataFrame, rows: np.ndarray, row_word: str) -> None:
            validate_bars(frame, self.spot_path.name, rows, row_word)
        return check

    def _chain_validator(self, path: Path) -> Validator:
        def check(frame: pd.DataFrame, rows: np.ndarray, row_word: str) -> None:
            validate_chain(frame, path.name, rows, row_word)
            check_underlying(frame, self.underlying, path.name, rows, row_word)
        return check

    def _apply_export_manifest(self) -> None:
        """Files written by ``--mode data export`` say at which times they hold chain snapshots
        (manifest.json beside the chain file); the lag limit is then the longest gap between those
        snapshots within a day, so the project's own export backtests with default settings.  An
        explicit ``max_lag_seconds`` wins.  The run notes say so."""
        if self.options_path is None or self.max_lag_seconds is not None:
            return
        manifest = self.options_path.parent / "manifest.json"
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(m, dict) or m.get("chains_file") != self.options_path.name or not m.get("chain_times"):
            return
        clock = sorted(dt.time.fromisoformat(t) for t in m["chain_times"])
        seconds = [3600 * t.hour + 60 * t.minute for t in clock] + [16 * 3600]
        self.max_lag_seconds = float(max(b - a for a, b in zip(seconds[:-1], seconds[1:], strict=True)))
        note = (f"chains: exported snapshots at {', '.join(m['chain_times'])} New York (manifest.json); marks "
                f"between them are as of the last snapshot (lag limit {self.max_lag_seconds:.0f} s)")
        self.info = replace(self.info, notes=(*self.info.notes, note))

    def _note_dropped(self, rows: set[int], path: Path) -> None:
        """Count the chain rows without a market (each file row once, whatever ranges were read)."""
        if not rows - self._dropped_rows:
            return
        self._dropped_rows |= rows
        self.dropped_quotes = len(self._dropped_rows)
        notes = [n for n in self.info.notes if not n.startswith("options: dropped")]
        notes.append(f"options: dropped {self.dropped_quotes} rows of {path.name} without a market "
                     "(bid and ask empty or 0); they are never used as prices")
        self.info = replace(self.info, notes=tuple(notes))

    @staticmethod
    def _to_local(values: pd.Series) -> pd.Series:
        s = parse_times(values)
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("America/New_York")
        return s.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT")

    def _read_bars(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        rr = read_range(self.spot_path, "bars", start, end, self.column_map, validate=self._bar_validator())
        local = pd.DatetimeIndex(self._to_local(rr.frame["ts"])).as_unit("ns")
        extra = [c for c in ("trade_count", "vwap") if c in rr.frame.columns]
        out = rr.frame.loc[:, [*BAR_COLUMNS, *extra]].astype(np.float64)
        if self.is_daily:
            out.index = pd.DatetimeIndex(local.tz_localize(None).normalize(), name="date")
        else:
            out.index = self._labels(rr.frame["ts"])
            self._check_session(out.index, rr.rows, rr.row_word, rr.time_source)
        return out

    def _check_session(self, labels: pd.DatetimeIndex, rows: np.ndarray, row_word: str, time_source: str) -> None:
        """Intraday bars must end inside their NYSE session (close label in (open, close])."""
        if labels.empty:
            return
        days = labels.tz_localize(None).normalize()
        try:
            opens, closes = session_bounds(days)
        except DataError as exc:
            bad = _first_non_session(days)
            raise DataError(f"{self.spot_path.name}: {row_word} {int(rows[bad])}, column "
                            f"'{time_source}': {exc}".rstrip(".")) from None
        session_check(labels.tz_convert("UTC").asi8, opens, closes, self.spot_path.name, rows, row_word, labels)

    def _labels(self, ts: pd.Series) -> pd.DatetimeIndex:
        """Close labels (New York) of intraday bars from the file's time column."""
        local = pd.DatetimeIndex(self._to_local(ts)).as_unit("ns")
        shift = pd.Timedelta(minutes=self.bar_minutes or 0) if self._start_labelled else pd.Timedelta(0)
        return pd.DatetimeIndex(local + shift, name="ts")

    def daily_bars(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        bars = self._read_bars(start, end)
        return bars.loc[:, list(BAR_COLUMNS)] if self.is_daily else daily_from_intraday(bars)

    def intraday_bars(self, start: dt.date, end: dt.date, minutes: int = 5) -> pd.DataFrame:
        if self.is_daily:
            raise DataError(f"{self.spot_path.name}: holds daily bars; intraday bars are not synthesised from vendor "
                            "files -- supply an intraday bar file or use --data-source embedded")
        base = int(self.bar_minutes or 0)
        if minutes % base:
            raise DataError(f"{self.spot_path.name}: has {base}-minute bars; ask for a multiple of {base} minutes")
        bars = self._read_bars(start, end)
        return bars if minutes == base else resample_bars(bars, minutes)

    def _chain_rows(self, start: dt.date | None, end: dt.date | None, columns: tuple[str, ...] | None = None,
                    greeks: bool = True, row_filter: RowFilter | None = None) -> pd.DataFrame:
        path = self._options()
        dropped: set[int] = set()

        def usable(frame: pd.DataFrame) -> np.ndarray:
            keep = _quoted(frame)
            dropped.update(frame.index[~keep].tolist())
            return keep & (row_filter(frame) if row_filter is not None else True)

        validator = self._chain_validator(path) if columns is None else None
        rr = read_range(path, "chain", start, end, self.column_map, columns, usable, validator)
        if validator is None:
            validate_chain(rr.frame, path.name, rr.rows, rr.row_word)
        self._note_dropped(dropped, path)
        return prepare_chain(rr.frame, self.rate, self.div_yield, greeks=greeks)

    def validate_all(self) -> str:
        """Read and validate every row of every file (``data describe``: the same verdict as any run).

        Streams chunk by chunk (nothing is kept, so memory stays bounded on files of any size);
        returns a one-line summary; raises ``DataError`` at the first bad row.
        """
        def bars_check(frame: pd.DataFrame, rows: np.ndarray, row_word: str) -> None:
            validate_bars(frame, self.spot_path.name, rows, row_word)
            if not self.is_daily:
                self._check_session(self._labels(frame["ts"]), rows, row_word, "ts")

        bars = read_range(self.spot_path, "bars", column_map=self.column_map, validate=bars_check, collect=False)
        parts = [f"validated {bars.rows_scanned} bars"]
        if self.options_path is not None:
            path = self.options_path
            dropped: set[int] = set()

            def usable(frame: pd.DataFrame) -> np.ndarray:
                keep = _quoted(frame)
                dropped.update(frame.index[~keep].tolist())
                return keep

            chain = read_range(path, "chain", column_map=self.column_map, row_filter=usable,
                               validate=self._chain_validator(path), collect=False)
            self._note_dropped(dropped, path)
            parts.append(f"{chain.rows_scanned - len(dropped)} option quotes ({len(dropped)} rows without a market "
                         "dropped)")
        if self.vix_path is not None:
            parts.append(f"{len(self._vix_file(None, None))} VIX days")
        return ", ".join(parts) + ": no problems found"

    def _options(self) -> Path:
        if self.options_path is None:
            raise DataError("no options file; pass --options-data FILE (optopsy layout, see data_factory/vendor.py)")
        return self.options_path

    def common_days(self) -> pd.DatetimeIndex:
        """Session days present in both the spot and the options file (reads only their time columns)."""
        spot = read_range(self.spot_path, "bars", column_map=self.column_map, columns=("ts",))
        local = pd.DatetimeIndex(self._to_local(spot.frame["ts"]))
        if self._start_labelled and not self.is_daily:
            local = local + pd.Timedelta(minutes=self.bar_minutes or 0)
        quotes = read_range(self._options(), "chain", column_map=self.column_map, columns=("quote_date",),
                            validate=self._time_validator(self._options(), "quote_date", strict=False))
        spot_days = local.tz_localize(None).normalize().unique()
        option_days = pd.DatetimeIndex(local_days(quotes.frame["quote_date"])).unique()
        return spot_days.intersection(option_days).sort_values().rename("date")

    def vix(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        if self.vix_path is not None:
            return self._vix_file(start, end)
        if self.options_path is None:
            raise DataError("no VIX: pass a VIX file (date, vix) or an options file to derive a 30-day IV proxy")
        rows = self._chain_rows(start, end, PROXY_COLUMNS, greeks=False, row_filter=_near_the_money)
        return vix_proxy(rows, self.rate, self.div_yield)

    def _vix_file(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        assert self.vix_path is not None
        rr = read_range(self.vix_path, "vix", start, end, self.column_map,
                        validate=self._time_validator(self.vix_path, "date"))
        frame = rr.frame
        if "vix" not in frame:
            raise DataError(f"{self.vix_path.name}: column 'vix' is missing; name the VIX column 'vix' or 'close'")
        value = pd.to_numeric(frame["vix"], errors="coerce")
        bars = pd.DataFrame({"ts": frame["date"], "open": value, "high": value, "low": value, "close": value,
                             "volume": 0.0})
        validate_bars(bars, self.vix_path.name, rr.rows, rr.row_word, outliers=False)
        days = pd.DatetimeIndex(self._to_local(frame["date"])).tz_localize(None).normalize().as_unit("ns")
        proxy = np.zeros(len(frame), bool)
        if "is_proxy" in frame:
            proxy = frame["is_proxy"].astype(str).str.strip().str.lower().isin(("true", "1")).to_numpy(bool)
        index = pd.DatetimeIndex(days, name="date")
        return pd.DataFrame({"vix": value.to_numpy(float), "is_proxy": proxy}, index=index)

    def chains(self, bars: pd.DataFrame) -> VendorChainSource:
        """Chain source over the options file for the days of ``bars`` (plus one prior week for marks)."""
        if bars.empty:
            raise DataError("no bars given to build option chains; choose a date range inside the spot file")
        idx = pd.DatetimeIndex(bars.index)
        local = idx.tz_convert("America/New_York").tz_localize(None) if idx.tz is not None else idx
        first, last = local.min().date(), local.max().date()
        key = (first, last)
        if key not in self._chain_cache:
            self._chain_cache = {key: self._chain_rows(first - dt.timedelta(days=7), last)}
        return VendorChainSource(self._chain_cache[key], bars, self.underlying, self.rate, self.div_yield,
                                 max_lag_seconds=self.max_lag_seconds, max_stale_fraction=self.max_stale_fraction,
                                 source=self.options_path.name if self.options_path else "options file")
