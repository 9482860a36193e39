"""The one validator every data source passes through (bars and option chains).

A failure raises :class:`core.dto.DataError` with ONE line naming the file, the row, the
column, the problem and what to do::

    spy_5min.csv: line 7, column 'high': high 101.2 is below max(open, close) 101.5; fix or drop the row

Row convention: ``line N`` counts the header as line 1, so the first data row is line 2 (as a
text editor shows a CSV file); ``row N`` (Parquet, in-memory frames) is the 1-based data row.
Readers that filter a file by date pass the original file row numbers in ``rows``.

Checks (vectorised; the earliest offending row of each stage is reported):

* bars: columns ``ts`` (or a ``DatetimeIndex``), ``open, high, low, close, volume`` present; no
  NaN/NaT in them; prices > 0; volume >= 0; ``high >= max(open, close)``; ``low <= min(open,
  close)``; timestamps strictly increasing (unsorted and duplicate rows are told apart); no bad
  tick (a high or low 1.5x / 1/1.5x the median close of the neighbouring bars); intraday vendor
  bars must end inside their NYSE session (``session_check``, applied by ``data_factory.vendor``).
* chains: columns ``quote_date, expiration, strike, option_type, bid, ask, underlying_price``
  present; no NaN/NaT in them; strike > 0; underlying price > 0; bid >= 0; ask >= 0;
  bid <= ask; ``option_type`` in {call, put, c, p} (any case); expiration date >= quote date;
  ``implied_volatility`` >= 0 where given; quote timestamps non-decreasing; one row per
  contract and quote time; ``underlying_symbol`` (when present) is the run's underlying
  (``check_underlying``).  Rows without a market (bid and ask empty or 0, ``no_quote_mask``)
  are not errors but never prices: readers drop and count them.
* times: text with UTC offsets is read as UTC, naive text as New York local; one convention
  per file (``parse_times``), so chunked reads give the same frames for any chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import pandas as pd

from core.dto import DataError

BAR_REQUIRED = ("ts", "open", "high", "low", "close", "volume")
CHAIN_REQUIRED = ("quote_date", "expiration", "strike", "option_type", "bid", "ask", "underlying_price")
OPTION_TYPES = ("call", "put", "c", "p")
_FIX_ROW = "fix or drop the row"
OUTLIER_FACTOR = 1.5
UNDERLYING_ALIASES = {"SPX": ("SPXW",), "SPXW": ("SPX",), "NDX": ("NDXP",), "RUT": ("RUTW",)}


@dataclass(frozen=True, slots=True)
class _Check:
    """One vectorised rule: ``bad`` marks offending rows, ``problem(i)`` words row ``i``."""

    column: str
    bad: np.ndarray
    problem: Callable[[int], str]
    fix: str = _FIX_ROW


def _row_numbers(n: int, rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return np.arange(n, dtype=np.int64) + 2
    if len(rows) != n:
        raise ValueError(f"rows has {len(rows)} entries for {n} data rows")
    return np.asarray(rows, dtype=np.int64)


def _raise_earliest(checks: list[_Check], source: str, rows: np.ndarray, row_word: str) -> None:
    """Raise for the earliest offending row over ``checks`` (ties: the first check listed)."""
    best: tuple[int, _Check] | None = None
    for check in checks:
        hits = np.flatnonzero(check.bad)
        if hits.size and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), check)
    if best is not None:
        i, check = best
        _fail(source, f"{row_word} {int(rows[i])}, column '{check.column}'", check.problem(i), check.fix)


def _fail(source: str, where: str, problem: str, fix: str) -> NoReturn:
    raise DataError(f"{source}: {where}: {problem}; {fix}")


def _require_columns(df: pd.DataFrame, required: tuple[str, ...], source: str) -> None:
    present = set(map(str, df.columns))
    for name in required:
        if name not in present:
            found = ", ".join(map(str, df.columns)) or "none"
            _fail(source, f"column '{name}'", f"missing (columns found: {found})",
                  "rename the column or pass a column_map (see data_factory/vendor.py for the layouts)")


_ZONE_SUFFIX = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_DATE_LIKE = r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"


def has_zone(values: pd.Series) -> np.ndarray:
    """Per value: does the text carry a UTC offset or ``Z`` after its time of day?"""
    text = pd.Series(values).astype("string").str.strip()
    return text.str.contains(_ZONE_SUFFIX, regex=True).fillna(False).to_numpy(dtype=bool)


def parse_times(values: pd.Series | pd.Index, aware: bool | None = None) -> pd.Series:
    """Timestamps from text (NaT where unreadable), the same type whatever rows are passed.

    ``aware``: the file's convention -- True: every value carries a zone offset and the result is
    UTC; False: naive values (New York local), result naive.  ``None`` decides from ``values``
    (aware when any value carries an offset).  A value that breaks the convention becomes NaT, so
    the validator names its row.  Chunked readers decide once, from the first chunk, and pass
    the decision on: the frames are then independent of the chunk size.
    """
    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if aware and not isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_localize("UTC").dt.as_unit("ns")
        return s.dt.tz_convert("UTC").dt.as_unit("ns") if isinstance(s.dtype, pd.DatetimeTZDtype) else s.dt.as_unit(
            "ns")
    text = s.astype("string").str.strip()
    zone = has_zone(text)
    if aware is None:
        aware = bool(zone.any())
    breaks = np.asarray(zone != aware, dtype=bool)
    text = text.mask(breaks)  # values that break the file's convention parse to NaT (the validator names them)
    out = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=aware)
    retry = (out.isna() & text.str.contains(_DATE_LIKE, regex=True).fillna(False)).to_numpy(dtype=bool)
    if retry.any():  # non-ISO dates (01/02/2018 09:35): parsed value by value, only where ISO failed
        again = pd.to_datetime(text[retry], errors="coerce", format="mixed", utc=aware)
        out = out.astype(again.dtype) if len(again) else out
        out[retry] = again
    out = out.dt.as_unit("ns")
    out[zone != aware] = pd.NaT
    return out


def _as_datetime(values: pd.Series | pd.Index) -> pd.Series:
    """Datetime series (NaT where unreadable); tz-aware values are converted to New York local time."""
    s = parse_times(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("America/New_York").dt.tz_localize(None)
    return s.reset_index(drop=True)


def _constant(text: str) -> Callable[[int], str]:
    return lambda _i: text


def _nan_checks(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[_Check]:
    checks = []
    for c in columns:
        if pd.api.types.is_datetime64_any_dtype(frame[c].dtype):
            problem = (f"{c} is empty or not a readable timestamp (or mixes zone offsets with naive times); "
                       "use ISO 8601 such as 2018-03-01T09:35:00-05:00 throughout")
            checks.append(_Check(c, frame[c].isna().to_numpy(), _constant(problem), "fix or drop the row"))
        else:
            checks.append(_Check(c, frame[c].isna().to_numpy(), _constant(f"{c} is empty or not a number"),
                                 "fill the value or drop the row"))
    return checks


def _positive(name: str, values: np.ndarray) -> _Check:
    return _Check(name, values <= 0, lambda i: f"{name} is {values[i]:g}, prices must be positive")


def _order_checks(ts: pd.Series, column: str, strict: bool) -> list[_Check]:
    t = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    step = np.diff(t)
    back = np.concatenate(([False], step < 0))
    checks = [_Check(column, back, lambda i: f"{ts.iloc[i]} is earlier than the previous row's {ts.iloc[i - 1]}",
                     "sort the file by time")]
    if strict:
        dup = np.concatenate(([False], step == 0))
        checks.append(_Check(column, dup, lambda i: f"timestamp {ts.iloc[i]} repeats the previous row",
                             "drop the duplicate row"))
    return checks


def validate_bars(df: pd.DataFrame, source: str, rows: np.ndarray | None = None, row_word: str = "line",
                  outliers: bool = True) -> None:
    """Validate OHLCV bars (timestamps in column ``ts`` or the index); raise ``DataError`` on the first problem.

    ``outliers`` adds the bad-tick check (``outlier_checks``); a VIX series, whose real spikes
    double it in a day, is validated without it.
    """
    frame = df.reset_index() if isinstance(df.index, pd.DatetimeIndex) else df
    if isinstance(df.index, pd.DatetimeIndex) and "ts" not in frame.columns:
        frame = frame.rename(columns={frame.columns[0]: "ts"})
    _require_columns(frame, BAR_REQUIRED, source)
    if frame.empty:
        return
    r = _row_numbers(len(frame), rows)
    ts = _as_datetime(frame["ts"])
    num = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in BAR_REQUIRED[1:]}
    nan_frame = pd.DataFrame({"ts": ts, **num})
    _raise_earliest(_nan_checks(nan_frame, BAR_REQUIRED), source, r, row_word)
    o, h, lo, c, v = (num[k] for k in ("open", "high", "low", "close", "volume"))
    checks = [_positive(k, num[k]) for k in ("open", "high", "low", "close")]
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    checks += [
        _Check("high", h < top - 1e-9 * top, lambda i: f"high {h[i]:g} is below max(open, close) {top[i]:g}"),
        _Check("low", lo > bottom + 1e-9 * bottom, lambda i: f"low {lo[i]:g} is above min(open, close) {bottom[i]:g}"),
        _Check("volume", v < 0, lambda i: f"volume is {v[i]:g}, it must be >= 0"),
    ]
    _raise_earliest(checks, source, r, row_word)
    _raise_earliest(_order_checks(ts, "ts", strict=True), source, r, row_word)
    if outliers:
        _raise_earliest(outlier_checks(o, h, lo, c), source, r, row_word)


def outlier_checks(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                   factor: float = OUTLIER_FACTOR) -> list[_Check]:
    """Bad ticks: a bar whose high or low is ``factor`` x (or 1/``factor`` x) the median close of the
    up-to-four neighbouring bars (two before, two after), i.e. ``|log(price / median)| > log(factor)``.

    With the default 1.5 a genuine move of the size needed (50% in one bar against both sides) does
    not happen in index or ETF data, while a decimal-point slip (10x, 100x) always trips it.
    """
    n = len(c)
    if n < 3:
        return []
    padded = np.r_[np.full(2, np.nan), c, np.full(2, np.nan)]
    neighbours = np.stack([padded[k:k + n] for k in (0, 1, 3, 4)])
    with np.errstate(all="ignore"):
        ref = np.nanmedian(neighbours, axis=0)
        up, down = h / ref, ref / lo
    limit = float(factor)
    return [
        _Check("high", np.nan_to_num(up) > limit,
               lambda i: f"high {h[i]:g} is {up[i]:.1f}x the neighbouring bars' median close {ref[i]:g} (a bad tick?)"),
        _Check("low", np.nan_to_num(down) > limit,
               lambda i: f"low {lo[i]:g} is 1/{down[i]:.1f} of the neighbouring bars' median close {ref[i]:g} "
                         "(a bad tick?)"),
    ]


def session_check(labels_ns: np.ndarray, opens_ns: np.ndarray, closes_ns: np.ndarray, source: str,
                  rows: np.ndarray, row_word: str, local: pd.DatetimeIndex) -> None:
    """Intraday bar close labels must lie in their NYSE session ``(open, close]``."""
    bad = (labels_ns <= opens_ns) | (labels_ns > closes_ns)
    _raise_earliest([_Check("ts", bad, lambda i: f"bar ending {local[i]:%Y-%m-%d %H:%M} New York lies outside the "
                            "regular session (09:30-16:00, 13:00 on early closes)",
                            "drop pre- and post-market bars")], source, rows, row_word)


def no_quote_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows without a market: bid and ask each empty or zero (a value that is not a number is kept
    for the validator to name).  Such a row is not a price; readers drop and count it."""
    empty_or_zero = np.ones(len(df), dtype=bool)
    for col in ("bid", "ask"):
        if col not in df.columns:
            return np.zeros(len(df), dtype=bool)
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        empty = (raw.isna() | (raw.astype("string").str.strip() == "")).to_numpy(dtype=bool)
        with np.errstate(invalid="ignore"):
            empty_or_zero &= empty | (num == 0)
    return empty_or_zero


def check_underlying(df: pd.DataFrame, underlying: str, source: str, rows: np.ndarray | None = None,
                     row_word: str = "line") -> None:
    """The chain's ``underlying_symbol`` (when the file has one) must be the run's underlying."""
    if "underlying_symbol" not in df.columns or df.empty:
        return
    symbol = df["underlying_symbol"].astype("string").str.strip().str.upper().fillna("")
    allowed = {underlying.upper(), *UNDERLYING_ALIASES.get(underlying.upper(), ())}
    bad = ~symbol.isin(allowed).to_numpy(dtype=bool)
    _raise_earliest([_Check("underlying_symbol", bad, lambda i: f"underlying '{symbol.iloc[i]}' is not the run's "
                            f"underlying {underlying}", f"pass --underlying {symbol.iloc[int(np.argmax(bad))]} or the "
                            f"{underlying} chain file")], source, _row_numbers(len(df), rows), row_word)


def validate_chain(df: pd.DataFrame, source: str, rows: np.ndarray | None = None, row_word: str = "line") -> None:
    """Validate option-chain rows in the standard layout; raise ``DataError`` on the first problem."""
    _require_columns(df, CHAIN_REQUIRED, source)
    if df.empty:
        return
    r = _row_numbers(len(df), rows)
    quote, expiry = _as_datetime(df["quote_date"]), _as_datetime(df["expiration"])
    num = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
           for c in ("strike", "bid", "ask", "underlying_price")}
    kind = df["option_type"].astype("string").str.strip().str.lower().reset_index(drop=True)
    nan_frame = pd.DataFrame({"quote_date": quote, "expiration": expiry, "option_type": kind, **num})
    _raise_earliest(_nan_checks(nan_frame, CHAIN_REQUIRED), source, r, row_word)
    _raise_earliest(_value_checks(df, num, kind, quote, expiry), source, r, row_word)
    _raise_earliest(_order_checks(quote, "quote_date", strict=False), source, r, row_word)
    key = pd.DataFrame({"q": quote, "e": expiry, "k": num["strike"], "t": kind.str[0]})
    dup = key.duplicated().to_numpy()
    _raise_earliest([_Check("strike", dup, lambda i: f"{kind.iloc[i]} {num['strike'][i]:g} expiring "
                            f"{expiry.iloc[i]:%Y-%m-%d} repeats an earlier row of the same quote time",
                            "drop the duplicate row")], source, r, row_word)


def _value_checks(df: pd.DataFrame, num: dict[str, np.ndarray], kind: pd.Series,
                  quote: pd.Series, expiry: pd.Series) -> list[_Check]:
    k, b, a, s = num["strike"], num["bid"], num["ask"], num["underlying_price"]
    q_day = quote.dt.normalize().to_numpy()
    e_day = expiry.dt.normalize().to_numpy()
    checks = [
        _Check("strike", k <= 0, lambda i: f"strike is {k[i]:g}, it must be positive"),
        _Check("underlying_price", s <= 0, lambda i: f"underlying price is {s[i]:g}, it must be positive"),
        _Check("bid", b < 0, lambda i: f"bid is {b[i]:g}, it must be >= 0"),
        _Check("ask", a < 0, lambda i: f"ask is {a[i]:g}, it must be >= 0"),
        _Check("bid", b > a, lambda i: f"crossed quote: bid {b[i]:g} > ask {a[i]:g}", "fix the quote or drop the row"),
        _Check("option_type", ~kind.isin(OPTION_TYPES).to_numpy(dtype=bool),
               lambda i: f"option type '{kind.iloc[i]}' is not one of call, put, c, p", "use call/put or c/p"),
        _Check("expiration", e_day < q_day,
               lambda i: f"expiration {expiry.iloc[i]:%Y-%m-%d} is before the quote date {quote.iloc[i]:%Y-%m-%d}"),
    ]
    if "implied_volatility" in df.columns:
        iv = pd.to_numeric(df["implied_volatility"], errors="coerce").to_numpy(dtype=float)
        checks.append(_Check("implied_volatility", iv < 0,
                             lambda i: f"implied volatility is {iv[i]:g}, it must be >= 0 (decimal, 0.18 = 18%)"))
    return checks


def validate_times(df: pd.DataFrame, column: str, source: str, rows: np.ndarray | None = None,
                   row_word: str = "line", strict: bool = True) -> None:
    """Only the time column (scans that read nothing else): readable, sorted, unique when ``strict``."""
    if df.empty:
        return
    r = _row_numbers(len(df), rows)
    ts = _as_datetime(df[column])
    _raise_earliest(_nan_checks(pd.DataFrame({column: ts}), (column,)), source, r, row_word)
    _raise_earliest(_order_checks(ts, column, strict=strict), source, r, row_word)
