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
from pathlib import Path

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.bars import daily_from_intraday, resample_bars
from data_factory.base import BAR_COLUMNS, DEFAULTS, SourceInfo
from data_factory.validation import parse_times, validate_bars, validate_chain
from data_factory.vendor_chains import VendorChainSource, prepare_chain, vix_proxy
from data_factory.vendor_io import START_LABELLED, RowFilter, local_days, read_range

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
        times = read_range(self.spot_path, "bars", column_map=self.column_map, columns=("ts",))
        self._start_labelled = (bar_label == "start") if bar_label else times.time_source.lower() in START_LABELLED
        local = pd.DatetimeIndex(self._to_local(times.frame["ts"]))
        if local.empty:
            raise DataError(f"{self.spot_path.name}: no bars in the file; check the file")
        if local.isna().any():
            line = int(times.rows[np.flatnonzero(local.isna())[0]])
            raise DataError(f"{self.spot_path.name}: {times.row_word} {line}, column '{times.time_source}': "
                            "not a readable time; fix or drop the row")
        self.is_daily = bool(np.all(local.tz_localize(None) == local.tz_localize(None).normalize()))
        self.bar_minutes = None if self.is_daily else (bar_minutes or _bar_minutes(local))
        if not self.is_daily and not self.bar_minutes:
            raise DataError(f"{self.spot_path.name}: cannot infer the bar length (one bar per day?); pass bar_minutes")
        days = local.tz_localize(None).normalize()
        self.info = SourceInfo(
            name="files", underlying=underlying, first_date=days.min().date(), last_date=days.max().date(),
            intraday_synthetic=False, vix_proxy_until=None if self.vix_path else days.max().date(),
            chains_modelled=False, notes=self._notes())
        self._chain_cache: dict[tuple[dt.date, dt.date], pd.DataFrame] = {}

    @classmethod
    def from_export(cls, folder: str | Path, **kwargs: object) -> FilesMarket:
        """Open a folder written by ``data_factory.export.export_market`` (reads its ``manifest.json``)."""
        root = Path(folder)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(f"{root}: no manifest.json; point at a folder written by --mode data export")
        m = json.loads(manifest_path.read_text())
        kwargs.setdefault("bar_minutes", m["minutes"])
        return cls(root / m["bars_file"], root / m["chains_file"], m["underlying"], rate=m["rate"],
                   div_yield=m["div_yield"], vix_path=root / m["vix_file"], **kwargs)  # type: ignore[arg-type]

    def _notes(self) -> tuple[str, ...]:
        notes = [f"spot: {self.spot_path}"]
        notes.append(f"options: {self.options_path}" if self.options_path else "options: none (no chains)")
        notes.append(f"vix: {self.vix_path}" if self.vix_path else "vix: 30-day ATM IV proxy from the options file")
        return tuple(notes)

    @staticmethod
    def _to_local(values: pd.Series) -> pd.Series:
        s = parse_times(values)
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("America/New_York")
        return s.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT")

    def _read_bars(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        rr = read_range(self.spot_path, "bars", start, end, self.column_map)
        validate_bars(rr.frame, self.spot_path.name, rr.rows, rr.row_word)
        local = pd.DatetimeIndex(self._to_local(rr.frame["ts"])).as_unit("ns")
        extra = [c for c in ("trade_count", "vwap") if c in rr.frame.columns]
        out = rr.frame.loc[:, [*BAR_COLUMNS, *extra]].astype(np.float64)
        if self.is_daily:
            out.index = pd.DatetimeIndex(local.tz_localize(None).normalize(), name="date")
        else:
            shift = pd.Timedelta(minutes=self.bar_minutes or 0) if self._start_labelled else pd.Timedelta(0)
            out.index = pd.DatetimeIndex(local + shift, name="ts")
        return out

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
        rr = read_range(path, "chain", start, end, self.column_map, columns, row_filter)
        validate_chain(rr.frame, path.name, rr.rows, rr.row_word)
        return prepare_chain(rr.frame, self.rate, self.div_yield, greeks=greeks)

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
        quotes = read_range(self._options(), "chain", column_map=self.column_map, columns=("quote_date",))
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
        rr = read_range(self.vix_path, "vix", start, end, self.column_map)
        frame = rr.frame
        if "vix" not in frame:
            raise DataError(f"{self.vix_path.name}: column 'vix' is missing; name the VIX column 'vix' or 'close'")
        value = pd.to_numeric(frame["vix"], errors="coerce")
        bars = pd.DataFrame({"ts": frame["date"], "open": value, "high": value, "low": value, "close": value,
                             "volume": 0.0})
        validate_bars(bars, self.vix_path.name, rr.rows, rr.row_word)
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
