"""Export any ``MarketSource`` to vendor files that ``FilesMarket`` reads back.

Folder layout (written to a temporary sibling folder, then renamed into place, so a failure
leaves nothing half-written; the target must be absent, empty, or a previous run replaced with
``force`` -- the one output rule of ``data_factory.out_folder``):

* ``<U>_bars_<m>min.csv`` -- Alpaca layout ``timestamp, open, high, low, close, volume``
  (+ ``trade_count``, ``vwap`` when the source has them); ``timestamp`` = bar start in UTC
  (ISO 8601 ``Z``) = close label minus the bar length; floats written at full precision;
* ``<U>_chains.parquet`` -- optopsy layout ``underlying_symbol, quote_date (timestamp, New
  York), expiration (date), strike, option_type (call/put), bid, ask, underlying_price,
  implied_volatility, delta, gamma, theta, vega, volume, open_interest``; one row group per
  day so date-range reads skip the other days; snapshots at ``chain_times`` (New York bar
  labels; ``None`` = every bar) with ``0 <= dte <= dte_max``;
* ``<U>_vix.csv`` -- ``date, vix, is_proxy``;
* ``manifest.json`` -- source info, range, files, rate and dividend yield
  (``FilesMarket.from_export(folder)`` opens it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.dto import ChainSnapshot, DataError
from data_factory.base import BAR_COLUMNS, DEFAULTS, ChainSource, MarketSource
from data_factory.market_window import chain_window
from data_factory.out_folder import atomic_dir, check_target

CHAIN_SCHEMA = pa.schema([
    ("underlying_symbol", pa.string()), ("quote_date", pa.timestamp("ns", tz="America/New_York")),
    ("expiration", pa.date32()), ("strike", pa.float64()), ("option_type", pa.string()),
    *[(c, pa.float64()) for c in ("bid", "ask", "underlying_price", "implied_volatility", "delta", "gamma",
                                  "theta", "vega", "volume", "open_interest")],
])
_SIDE = (("bid", "bid"), ("ask", "ask"), ("implied_volatility", "iv"), ("delta", "delta"), ("gamma", "gamma"),
         ("theta", "theta"), ("vega", "vega"), ("volume", "volume"), ("open_interest", "oi"))


@dataclass(frozen=True, slots=True)
class ExportResult:
    out_dir: str
    bars_file: str
    chains_file: str
    vix_file: str
    bars: int
    snapshots: int
    chain_rows: int

    def summary(self) -> str:
        return (f"wrote {self.bars} bars, {self.snapshots} chain snapshots ({self.chain_rows} rows) "
                f"and VIX to {self.out_dir}")


def snapshot_frame(snapshot: ChainSnapshot) -> pd.DataFrame:
    """One row per contract (calls then puts of each expiry, by strike) in the optopsy layout."""
    parts = []
    for expiry in snapshot.expiries:
        piece = snapshot.slices[expiry]
        n = piece.strikes.size
        for right, prefix in (("call", "call_"), ("put", "put_")):
            cols = {"expiration": [expiry] * n, "dte": np.full(n, piece.dte), "strike": piece.strikes,
                    "option_type": [right] * n}
            cols.update({name: getattr(piece, prefix + field) for name, field in _SIDE})
            parts.append(pd.DataFrame(cols))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["expiration", "dte", "strike", "option_type", *[n for n, _ in _SIDE]])
    frame.insert(0, "quote_date", pd.Timestamp(snapshot.ts))
    frame.insert(0, "underlying_symbol", snapshot.underlying)
    frame["underlying_price"] = float(snapshot.spot)
    return frame


def _snapshot_times(bars: pd.DataFrame, chain_times: tuple[str, ...] | None) -> pd.DatetimeIndex:
    """Bar labels at the wanted New York clock times (all bars when ``chain_times`` is None)."""
    idx = pd.DatetimeIndex(bars.index)
    if chain_times is None:
        return idx
    try:
        wanted = {dt.time.fromisoformat(t) for t in chain_times}
    except ValueError:
        raise DataError(f"chain times {chain_times} are invalid; use HH:MM clock times such as 10:00") from None
    local_times = idx.tz_convert("America/New_York").time
    return idx[np.array([t in wanted for t in local_times], dtype=bool)]


def _write_chains(source: ChainSource, bars: pd.DataFrame, path: Path, dte_max: int,
                  chain_times: tuple[str, ...] | None) -> tuple[int, int]:
    times = _snapshot_times(bars, chain_times)
    days = times.tz_convert("America/New_York").normalize()
    rows = snaps = 0
    with pq.ParquetWriter(path, CHAIN_SCHEMA) as writer:
        for day in days.unique():
            frames = [snapshot_frame(source.snapshot(ts, 0, dte_max)) for ts in times[days == day]]
            table_frame = pd.concat(frames, ignore_index=True).drop(columns="dte")
            if table_frame.empty:
                continue
            writer.write_table(pa.Table.from_pandas(table_frame, schema=CHAIN_SCHEMA, preserve_index=False))
            rows += len(table_frame)
            snaps += len(frames)
    return rows, snaps


def _write_bars(bars: pd.DataFrame, path: Path, minutes: int) -> None:
    start = (pd.DatetimeIndex(bars.index) - pd.Timedelta(minutes=minutes)).tz_convert("UTC")
    cols = [*BAR_COLUMNS, *[c for c in ("trade_count", "vwap") if c in bars.columns]]
    out = bars.loc[:, cols].reset_index(drop=True)
    out.insert(0, "timestamp", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(path, index=False)


def _write_vix(vix: pd.DataFrame, path: Path) -> None:
    out = pd.DataFrame({"date": pd.DatetimeIndex(vix.index).strftime("%Y-%m-%d"), "vix": vix["vix"].to_numpy(),
                        "is_proxy": vix["is_proxy"].to_numpy(bool)})
    out.to_csv(path, index=False)


def _rate_and_yield(source: ChainSource) -> tuple[float, float]:
    params = getattr(source, "params", None)
    rate = getattr(source, "rate", getattr(params, "rate", DEFAULTS.data.rate))
    div_yield = getattr(source, "div_yield", getattr(params, "dividend_yield", DEFAULTS.data.dividend_yield))
    return float(rate), float(div_yield)


def export_market(market: MarketSource, start: dt.date, end: dt.date, out_dir: str | Path, minutes: int = 5,
                  dte_max: int = 60, chain_times: tuple[str, ...] | None = ("10:00", "15:30"),
                  force: bool = False) -> ExportResult:
    """Write bars, chains and VIX of ``start..end`` to ``out_dir`` atomically (layout in the module doc).

    The chains come from the same market state as a backtest of ``start..end`` (the chain source
    is built over the warm-up bars before ``start`` too, so the first day knows the previous
    close).  ``out_dir`` follows the one output rule of ``data_factory.out_folder`` (absent, empty,
    or a previous run replaced only with ``force``).
    """
    out = Path(out_dir)
    check_target(out, force)
    all_bars, source = chain_window(market, start, end, minutes)
    days = _local_days(all_bars.index)
    bars = all_bars.loc[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
    if bars.empty:
        raise DataError(f"no bars between {start} and {end}; choose dates inside the data source")
    u = market.info.underlying
    names = {"bars_file": f"{u}_bars_{minutes}min.csv", "chains_file": f"{u}_chains.parquet",
             "vix_file": f"{u}_vix.csv"}
    with atomic_dir(out, force) as tmp:
        _write_bars(bars, tmp / names["bars_file"], minutes)
        _write_vix(market.vix(start, end), tmp / names["vix_file"])
        rows, snaps = _write_chains(source, bars, tmp / names["chains_file"], dte_max, chain_times)
        rate, div_yield = _rate_and_yield(source)
        result = ExportResult(str(out), names["bars_file"], names["chains_file"], names["vix_file"], bars=len(bars),
                              snapshots=snaps, chain_rows=rows)
        manifest = {"format": "quantor-export/1", "underlying": u, "source": market.info.as_dict(),
                    "start": str(start), "end": str(end), "minutes": minutes, "dte_max": dte_max,
                    "chain_times": list(chain_times) if chain_times else None, "rate": rate,
                    "div_yield": div_yield, **asdict(result)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return result


def _local_days(index: pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_convert("America/New_York").tz_localize(None) if idx.tz is not None else idx).normalize()
