"""Column layouts and date-range reads of vendor CSV / Parquet files (see ``data_factory.vendor``).

A file is never loaded whole:

* **Parquet** -- row groups whose min/max statistics of the date column fall outside the range
  are skipped without being read (pruning works when the column is stored as a Parquet
  date/timestamp; string dates are read group by group and filtered);
* **CSV** -- read in chunks (``HEAD_ROWS`` first, then ``CHUNK_ROWS``), filtered, and reading stops
  after the first chunk that passes the end date (files are sorted by time, which the validator
  enforces).  The bytes pass ``data_factory.file_sniff.GuardedStream`` (a NUL byte or a line over
  64 KiB stops the read at once) and the zone convention of the time column is fixed by the
  first chunk, so the frames are the same for every chunk size.

The format comes from the bytes (``data_factory.file_sniff.sniff``): Parquet magic, compressed
files, binary data, the delimiter; a file named .csv holding Parquet is read as Parquet.

Each kept row remembers its place in the file (``rows``): the CSV line number counting the
header as line 1, or the 1-based Parquet data row, so error messages point at the file.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.dto import DataError
from data_factory.file_sniff import GuardedStream, delimiter_name, sniff
from data_factory.validation import has_zone, parse_times

CHUNK_ROWS = 250_000
HEAD_ROWS = 1_000  # the first chunk: a bad file fails after reading this much
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
    """Column names of a CSV header or a Parquet schema (the format is sniffed from the bytes)."""
    kind = sniff(path)
    if kind.parquet:
        return list(_parquet_file(path).schema_arrow.names)
    with _open_text(path) as handle:
        try:
            header = pd.read_csv(handle, nrows=0, sep=kind.delimiter, encoding=kind.encoding)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path.name}: line 1 cannot be read as a CSV header ({str(exc).splitlines()[0]}); "
                            "check the delimiter and header") from None
    columns = [str(c) for c in header.columns]
    if len(columns) < 2:
        raise DataError(f"{path.name}: line 1 has a single column; expected {delimiter_name(kind.delimiter)}-"
                        "separated column names")
    return columns


def is_parquet(path: Path) -> bool:
    """Parquet by content (``PAR1`` magic), whatever the name says."""
    return sniff(path).parquet


def _open_text(path: Path) -> io.BufferedReader:
    return io.BufferedReader(GuardedStream(path), buffer_size=256 * 1024)


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{path.name}: cannot be read as Parquet ({str(exc).splitlines()[0]}); "
                        "check or export the file again") from None


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


def _parse_time(frame: pd.DataFrame, col: str, aware: bool | None) -> bool:
    """Parse ``frame[col]`` in place with the file's zone convention; returns the convention used."""
    if aware is None:
        aware = bool(has_zone(frame[col]).any()) if not pd.api.types.is_datetime64_any_dtype(frame[col].dtype) else (
            isinstance(frame[col].dtype, pd.DatetimeTZDtype))
    frame[col] = parse_times(frame[col], aware=aware).set_axis(frame.index)
    return aware


RowFilter = Callable[[pd.DataFrame], np.ndarray]
Validator = Callable[[pd.DataFrame, np.ndarray, str], None]  # (standard-named rows, file places, row word)


def read_range(path: str | Path, kind: str, start: dt.date | None = None, end: dt.date | None = None,
               column_map: dict[str, str] | None = None, columns: tuple[str, ...] | None = None,
               row_filter: RowFilter | None = None, validate: Validator | None = None,
               max_rows: int | None = None, collect: bool = True) -> RangeRead:
    """Rows of ``path`` whose time column falls on ``start..end`` (inclusive, New York days; None = open).

    ``columns`` restricts the read to these standard names (plus the time column); ``row_filter``
    (a mask over a chunk with standard names, indexed by the rows' places in the file) drops rows
    chunk by chunk, keeping memory small.
    ``validate`` is called chunk by chunk on the rows kept, and on every row of the first
    ``HEAD_ROWS`` (in the range or not), so a bad file fails after its first rows, whatever its
    size; the rows of the last time stamp of a chunk are checked again with the next one, so
    order and duplicate checks see across chunk borders.  ``max_rows`` stops after that many rows;
    ``collect=False`` keeps no rows (validation-only scans in bounded memory).
    """
    p = Path(path)
    found = file_columns(p)
    parquet = is_parquet(p)
    names = standard_names(found, kind, column_map)
    inverse = {v: k for k, v in names.items()}
    if TIME_COLUMN[kind] not in inverse:
        raise DataError(f"{p.name}: column '{TIME_COLUMN[kind]}' is missing (columns found: {', '.join(found)}); "
                        "rename the column or pass a column_map (see data_factory/vendor.py for the layouts)")
    time_col = inverse[TIME_COLUMN[kind]]
    wanted = list(names) if columns is None else [inverse[c] for c in dict.fromkeys((TIME_COLUMN[kind], *columns))
                                                  if c in inverse]
    if parquet:
        chunks = _parquet_chunks(p, time_col, start, end, wanted, max_rows)
    else:
        chunks = _csv_chunks(p, time_col, end, wanted if columns is not None else None, max_rows)
    row_word = "row" if parquet else "line"
    std_time = TIME_COLUMN[kind]
    parts, places, scanned = [], [], 0
    carry: tuple[pd.DataFrame, np.ndarray] | None = None
    for chunk, first_row, n_read in chunks:
        in_head = scanned < HEAD_ROWS
        scanned += n_read
        at = first_row + np.arange(len(chunk))
        frame = chunk.loc[:, wanted].rename(columns=names).set_axis(pd.Index(at, name="place"))
        keep = _in_range(local_days(frame[std_time]), start, end)
        passes = np.asarray(row_filter(frame), dtype=bool) if row_filter is not None else np.ones(len(frame), bool)
        if validate is not None:
            checked = passes & (keep | in_head)
            carry = _validate_chunk(validate, frame.loc[checked], at[checked], row_word, std_time, carry)
        if collect:
            keep &= passes
            parts.append(frame.loc[keep])
            places.append(at[keep])
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=[names[c] for c in wanted])
    rows = np.concatenate(places) if places else np.zeros(0, np.int64)
    return RangeRead(frame.reset_index(drop=True), rows, row_word, scanned, time_col)


def _validate_chunk(validate: Validator, frame: pd.DataFrame, rows: np.ndarray, row_word: str, time_col: str,
                    carry: tuple[pd.DataFrame, np.ndarray] | None) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Validate ``frame`` after the previous chunk's last time stamp; returns the new carry."""
    if frame.empty:
        return carry
    if carry is not None:
        frame, rows = pd.concat([carry[0], frame], ignore_index=True), np.r_[carry[1], rows]
    validate(frame.reset_index(drop=True), rows, row_word)
    times = frame[time_col]
    last = times.iloc[-1]
    tail = (times == last).to_numpy(dtype=bool)
    return frame.loc[tail].reset_index(drop=True), rows[tail]


Chunks = Iterator[tuple[pd.DataFrame, int, int]]  # (raw chunk, file place of its first row, rows read)


def _csv_chunks(p: Path, time_col: str, end: dt.date | None, wanted: list[str] | None,
                max_rows: int | None) -> Chunks:
    """CSV rows in chunks: ``HEAD_ROWS`` first (junk fails fast), then ``CHUNK_ROWS`` at a time.

    The zone convention of the time column (offsets or naive) is decided on the first chunk and
    applied to every later one, so the frames do not depend on the chunk size.  ``wanted`` None
    reads every column, so a row with more fields than the header is an error, not ignored.
    """
    kind = sniff(p)
    scanned, aware = 0, None
    handle = _open_text(p)
    try:
        reader = pd.read_csv(handle, chunksize=CHUNK_ROWS, usecols=wanted, dtype={time_col: str},
                             skip_blank_lines=False, sep=kind.delimiter, encoding=kind.encoding)
        with reader:
            while max_rows is None or scanned < max_rows:
                size = min(HEAD_ROWS, CHUNK_ROWS) if scanned == 0 else CHUNK_ROWS
                if max_rows is not None:
                    size = min(size, max_rows - scanned)
                try:
                    chunk = reader.get_chunk(size)
                except StopIteration:
                    return
                aware = _parse_time(chunk, time_col, aware)
                yield chunk, scanned + 2, len(chunk)
                scanned += len(chunk)
                days = local_days(chunk[time_col])
                known = days[~np.isnat(days)]
                if end is not None and known.size and known.max() > np.datetime64(end, "D"):
                    return  # sorted file: nothing later can fall in the range
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p.name}: cannot be read as CSV ({str(exc).splitlines()[0]}); "
                        f"check the delimiter ({delimiter_name(kind.delimiter)} found in the header) and the "
                        "rows") from None
    finally:
        handle.close()


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


def _parquet_chunks(p: Path, time_col: str, start: dt.date | None, end: dt.date | None, wanted: list[str],
                    max_rows: int | None) -> Chunks:
    pf = _parquet_file(p)
    meta = pf.metadata
    col_index = pf.schema_arrow.names.index(time_col)
    offset, aware = 0, None
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if max_rows is not None and offset >= max_rows:
            return
        if not _group_outside(meta, g, col_index, start, end) or (max_rows is not None and offset == 0):
            try:
                chunk = pf.read_row_group(g, columns=wanted).to_pandas()
            except Exception as exc:  # pyarrow: corrupt pages, bad encodings
                raise DataError(f"{p.name}: row group {g + 1} cannot be read ({str(exc).splitlines()[0]}); "
                                "export the file again") from None
            if max_rows is not None:
                chunk = chunk.iloc[: max_rows - offset]
            aware = _parse_time(chunk, time_col, aware)
            yield chunk, offset + 1, len(chunk)
        offset += n
