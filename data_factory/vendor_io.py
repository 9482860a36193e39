"""Column layouts and date-range reads of vendor CSV / Parquet files (see ``data_factory.vendor``).

A file is never loaded whole:

* **Parquet** -- row groups whose min/max statistics of the date column fall outside the range
  are skipped without being read (pruning works when the column is stored as a Parquet
  date/timestamp; string dates are read group by group and filtered);
* **CSV** -- read in chunks of ``CHUNK_ROWS`` rows, filtered, and reading stops after the first
  chunk that passes the end date (files are sorted by time, which the validator enforces).

Each kept row remembers its place in the file (``rows``): the CSV line number counting the
header as line 1, or the 1-based Parquet data row, so error messages point at the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.dto import DataError
from data_factory.validation import parse_times

CHUNK_ROWS = 250_000
BAR_ALIASES = {
    "ts": "ts", "timestamp": "ts", "t": "ts", "datetime": "ts", "date_time": "ts", "date": "ts", "time": "ts",
    "open": "open", "o": "open", "high": "high", "h": "high", "low": "low", "l": "low",
    "close": "close", "c": "close", "volume": "volume", "v": "volume",
    "trade_count": "trade_count", "n": "trade_count", "vwap": "vwap", "vw": "vwap",
}
START_LABELLED = frozenset({"timestamp", "t"})  # Alpaca names: the bar's start time
CHAIN_ALIASES = {
    "quote_date": "quote_date", "quote_datetime": "quote_date", "quotedate": "quote_date", "trade_date": "quote_date",
    "date": "quote_date", "expiration": "expiration", "expiry": "expiration", "expiration_date": "expiration",
    "expirationdate": "expiration", "exdate": "expiration", "strike": "strike", "strike_price": "strike",
    "option_type": "option_type", "type": "option_type", "call_put": "option_type", "cp_flag": "option_type",
    "put_call": "option_type", "right": "option_type", "bid": "bid", "ask": "ask",
    "underlying_price": "underlying_price", "underlying_last": "underlying_price", "spot": "underlying_price",
    "active_underlying_price": "underlying_price", "implied_volatility": "implied_volatility",
    "iv": "implied_volatility", "impl_volatility": "implied_volatility", "delta": "delta", "gamma": "gamma",
    "theta": "theta", "vega": "vega", "volume": "volume", "trade_volume": "volume",
    "open_interest": "open_interest", "openinterest": "open_interest", "oi": "open_interest",
    "underlying_symbol": "underlying_symbol", "underlying": "underlying_symbol", "root": "underlying_symbol",
}
VIX_ALIASES = {"date": "date", "ts": "date", "timestamp": "date", "vix": "vix", "close": "vix", "vix_close": "vix",
               "is_proxy": "is_proxy"}
ALIASES = {"bars": BAR_ALIASES, "chain": CHAIN_ALIASES, "vix": VIX_ALIASES}
TIME_COLUMN = {"bars": "ts", "chain": "quote_date", "vix": "date"}


@dataclass(frozen=True, slots=True, eq=False)
class RangeRead:
    """Rows of one file inside a date range, with standard column names."""

    frame: pd.DataFrame
    rows: np.ndarray  # place of each row in the file (see ``row_word``)
    row_word: str  # "line" (CSV, header = line 1) or "row" (Parquet, 1-based)
    rows_scanned: int  # rows actually read from disk
    time_source: str  # the file's own name of the time column


def standard_names(columns: list[str], kind: str, column_map: dict[str, str] | None = None) -> dict[str, str]:
    """Map ``file column -> standard name``: ``column_map`` first, then the case-insensitive aliases."""
    explicit = {k: v for k, v in (column_map or {}).items() if k in columns}
    out, taken = dict(explicit), set(explicit.values())
    for col in columns:
        target = ALIASES[kind].get(str(col).strip().lower())
        if col not in out and target is not None and target not in taken:
            out[col] = target
            taken.add(target)
    return out


def file_columns(path: Path) -> list[str]:
    """Column names of a CSV header or a Parquet schema."""
    if is_parquet(path):
        return list(pq.ParquetFile(path).schema_arrow.names)
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def local_days(values: pd.Series) -> np.ndarray:
    """Calendar day (``datetime64[D]``, New York local for tz-aware values) of each timestamp; NaT kept."""
    s = parse_times(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("America/New_York").dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def _in_range(days: np.ndarray, start: dt.date | None, end: dt.date | None) -> np.ndarray:
    keep = np.ones(len(days), dtype=bool)
    known = ~np.isnat(days)
    if start is not None:
        keep &= ~known | (days >= np.datetime64(start, "D"))
    if end is not None:
        keep &= ~known | (days <= np.datetime64(end, "D"))
    return keep


def _parse_time(frame: pd.DataFrame, col: str) -> None:
    if not pd.api.types.is_datetime64_any_dtype(frame[col].dtype):
        frame[col] = parse_times(frame[col]).to_numpy()


RowFilter = Callable[[pd.DataFrame], np.ndarray]


def read_range(path: str | Path, kind: str, start: dt.date | None = None, end: dt.date | None = None,
               column_map: dict[str, str] | None = None, columns: tuple[str, ...] | None = None,
               row_filter: RowFilter | None = None) -> RangeRead:
    """Rows of ``path`` whose time column falls on ``start..end`` (inclusive, New York days; None = open).

    ``columns`` restricts the read to these standard names (plus the time column); ``row_filter``
    (a mask over a chunk with standard names) drops rows chunk by chunk, keeping memory small.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; check the path")
    found = file_columns(p)
    names = standard_names(found, kind, column_map)
    inverse = {v: k for k, v in names.items()}
    if TIME_COLUMN[kind] not in inverse:
        raise DataError(f"{p.name}: column '{TIME_COLUMN[kind]}' is missing (columns found: {', '.join(found)}); "
                        "rename the column or pass a column_map (see data_factory/vendor.py for the layouts)")
    time_col = inverse[TIME_COLUMN[kind]]
    wanted = list(names) if columns is None else [inverse[c] for c in dict.fromkeys((TIME_COLUMN[kind], *columns))
                                                  if c in inverse]
    if is_parquet(p):
        chunks = _parquet_chunks(p, time_col, start, end, wanted)
    else:
        chunks = _csv_chunks(p, time_col, end, wanted)
    parts, places, scanned = [], [], 0
    for chunk, first_row, n_read in chunks:
        scanned += n_read
        keep = _in_range(local_days(chunk[time_col]), start, end)
        frame = chunk.loc[:, wanted].rename(columns=names)
        if row_filter is not None:
            keep &= row_filter(frame)
        parts.append(frame.loc[keep])
        places.append(first_row + np.flatnonzero(keep))
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=[names[c] for c in wanted])
    rows = np.concatenate(places) if places else np.zeros(0, np.int64)
    return RangeRead(frame.reset_index(drop=True), rows, "row" if is_parquet(p) else "line", scanned, time_col)


Chunks = Iterator[tuple[pd.DataFrame, int, int]]  # (raw chunk, file place of its first row, rows read)


def _csv_chunks(p: Path, time_col: str, end: dt.date | None, wanted: list[str]) -> Chunks:
    scanned = 0
    try:
        reader = pd.read_csv(p, chunksize=CHUNK_ROWS, usecols=wanted, dtype={time_col: str}, skip_blank_lines=False)
        for chunk in reader:
            _parse_time(chunk, time_col)
            yield chunk, scanned + 2, len(chunk)
            scanned += len(chunk)
            days = local_days(chunk[time_col])
            known = days[~np.isnat(days)]
            if end is not None and known.size and known.max() > np.datetime64(end, "D"):
                return  # sorted file: nothing later can fall in the range
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p.name}: cannot be read as CSV ({str(exc).splitlines()[0]}); "
                        "check the delimiter and header") from None


def _stat_day(value: object) -> np.datetime64 | None:
    if isinstance(value, dt.datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_convert("America/New_York").tz_localize(None) if ts.tzinfo is not None else ts
        return np.datetime64(ts.date(), "D")
    if isinstance(value, dt.date):
        return np.datetime64(value, "D")
    return None  # strings/ints: no reliable ordering, read the group


def _group_outside(meta: pq.FileMetaData, group: int, col_index: int, start: dt.date | None,
                   end: dt.date | None) -> bool:
    """True when the row group's statistics prove no row falls in ``start..end``."""
    stats = meta.row_group(group).column(col_index).statistics
    if stats is None or not stats.has_min_max:
        return False
    lo, hi = _stat_day(stats.min), _stat_day(stats.max)
    if lo is None or hi is None:
        return False
    return bool((start is not None and hi < np.datetime64(start, "D"))
                or (end is not None and lo > np.datetime64(end, "D")))


def _parquet_chunks(p: Path, time_col: str, start: dt.date | None, end: dt.date | None, wanted: list[str]) -> Chunks:
    try:
        pf = pq.ParquetFile(p)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{p.name}: cannot be read as Parquet ({exc}); check the file") from None
    meta = pf.metadata
    col_index = pf.schema_arrow.names.index(time_col)
    offset = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if not _group_outside(meta, g, col_index, start, end):
            chunk = pf.read_row_group(g, columns=wanted).to_pandas()
            _parse_time(chunk, time_col)
            yield chunk, offset + 1, n
        offset += n
