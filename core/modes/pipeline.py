"""The production data pipeline: download -> validate -> merge -> expand -> describe, idempotent.

``run_pipeline(settings)`` works in one folder (``settings.out``)::

    <out>/download/stocks/..., .../options/...  the Alpaca download layout (data_factory.alpaca_download)
    <out>/merged/<U>_bars_<tf>.parquet          every downloaded bar of U, bar start in UTC (Alpaca layout)
    <out>/merged/<U>_chains_eod.parquet         end-of-day snapshots: each contract's last option bar of the
                                               day (close as a zero-width quote, marked trade-derived),
                                               IV inverted from it at the underlying's close
    <out>/expanded/<U>_chains_expanded.parquet  intraday quotes (data_factory.expand, flagged modelled)
    <out>/report/alignment.txt, alignment.pdf   exact-match %, lag distribution, iv_conf, days kept/dropped

Idempotent: the download skips complete days; merge, expand and the report are rebuilt from the
download each time and replace only their own previous output (``--force`` semantics of the
one output rule), so running twice gives the same files.  Nothing half-written is trusted: each
step writes whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.dto import ConfigError, DataError
from data_factory.alignment import align_chains, lag_limit_seconds
from data_factory.alpaca_download import COMPLETE, download
from data_factory.out_folder import atomic_dir

PIPELINE_PARTS = ("download", "merged", "expanded", "report")


@dataclass(frozen=True)
class PipelineSettings:
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    timeframe: str
    expand_minutes: int
    out: Path
    data_url: str | None
    dte_max: int
    rate: float
    dividend_yield: float

    @classmethod
    def from_config(cls, cfg: Any) -> PipelineSettings:
        p = cfg.pipeline
        if p.start is None or p.end is None:
            raise ConfigError("[pipeline] start and end are required (YYYY-MM-DD) in the config file")
        return cls(tuple(p.symbols), p.start, p.end, p.timeframe, int(p.expand_minutes), Path(p.out), p.data_url,
                   p.dte_max, cfg.data.rate, cfg.data.dividend_yield)


def _days(root: Path, kind: str, sym: str) -> list[Path]:
    base = root / kind / f"underlying={sym}"
    return sorted(d for d in base.glob("date=*") if (d / COMPLETE).is_file()) if base.is_dir() else []


def merge(root: Path, sym: str, tf: str, rate: float, q: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merged bars (Alpaca layout) and end-of-day chain rows of one symbol from the complete days."""
    from analytics.pricing import implied_vol

    bars = [pd.read_parquet(d / f"bars_{tf}.parquet") for d in _days(root, "stocks", sym)]
    if not bars:
        raise DataError(f"pipeline: no complete stock-bar days of {sym} under {root}; the download failed?")
    spot = pd.concat(bars, ignore_index=True).sort_values("t").reset_index(drop=True)
    spot = spot.rename(columns={"t": "timestamp"})
    chain_rows = []
    for d in _days(root, "options", sym):
        contracts = pd.read_parquet(d / "contracts.parquet")
        ob = pd.read_parquet(d / f"option_bars_{tf}.parquet")
        if contracts.empty or ob.empty:
            continue
        last = ob.sort_values("t").groupby("symbol").tail(1).set_index("symbol")
        info = contracts.set_index("symbol").loc[last.index]
        day = dt.date.fromisoformat(d.name.split("=", 1)[1])
        close_t = pd.Timestamp(f"{day} 16:00", tz="America/New_York")
        day_spot = spot[pd.to_datetime(spot["timestamp"], utc=True) < close_t.tz_convert("UTC")]
        if day_spot.empty:
            continue
        s = float(day_spot["close"].iloc[-1])
        k = info["strike_price"].astype(float).to_numpy()
        expiry = pd.to_datetime(info["expiration_date"]).dt.date.to_numpy()
        tau = np.array([(pd.Timestamp(f"{e} 16:00", tz="America/New_York") - close_t).total_seconds() / 31_536_000
                        for e in expiry])
        price = last["close"].astype(float).to_numpy()
        calls = info["type"].str.lower().eq("call").to_numpy()
        iv = implied_vol(price, s, k, np.maximum(tau, 1e-6), rate, q, calls)
        chain_rows.append(pd.DataFrame({
            "underlying_symbol": sym, "quote_date": close_t, "expiration": expiry, "strike": k,
            "option_type": np.where(calls, "call", "put"), "bid": price, "ask": price, "underlying_price": s,
            "implied_volatility": iv, "volume": last["volume"].astype(float).to_numpy()}))
    chain = pd.concat(chain_rows, ignore_index=True) if chain_rows else pd.DataFrame()
    return spot, chain


def _alignment_text(sym: str, diag: Any, kept: int, dropped: list[str]) -> str:
    lines = [f"{sym}: alignment of the expanded chains to the bars",
             f"  bars on common days: {diag.bars}; exact match {diag.exact_pct:.1f}%, prior snapshot "
             f"{diag.prior_pct:.1f}%, stale {diag.stale_pct:.1f}%, none {diag.none_pct:.1f}%",
             f"  lag: max {diag.lag_max_s:.0f} s (limit {diag.lag_limit_s:.0f} s)",
             f"  iv_conf: mean {diag.iv_conf_mean:.3f}, min {diag.iv_conf_min:.3f}",
             f"  days kept: {kept}; dropped: {len(dropped)}" + (f" ({', '.join(dropped[:10])})" if dropped else "")]
    return "\n".join(lines)


def _pdf(text: str, path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Quantor data pipeline: alignment report")
    y = A4[1] - 60
    c.setFont("Helvetica-Bold", 13)
    c.drawString(50, y, "Data pipeline: alignment report")
    c.setFont("Courier", 9)
    for line in text.splitlines():
        y -= 14
        if y < 50:
            c.showPage()
            c.setFont("Courier", 9)
            y = A4[1] - 60
        c.drawString(50, y, line[:110])
    c.save()


def run_pipeline(s: PipelineSettings, progress: bool = True) -> str:
    """Run every step; returns the alignment report text (also written as text and PDF)."""
    from core.modes.data import describe
    from data_factory.expand import expand_chains
    from data_factory.vendor import FilesMarket
    from data_factory.vendor_chains import prepare_chain

    root = s.out
    if root.exists() and any(p.name not in PIPELINE_PARTS for p in root.iterdir()):
        raise ConfigError(f"[pipeline] out = {root}: holds files that are not this pipeline's; give a new folder")
    got = download(list(s.symbols), s.start, s.end, s.timeframe, root / "download", options=True, url=s.data_url,
                   progress=progress, dte_max=s.dte_max)
    report = [got.summary()]
    for sym in s.symbols:
        spot, chain = merge(root / "download", sym, s.timeframe, s.rate, s.dividend_yield)
        if chain.empty:
            raise DataError(f"pipeline: no option bars of {sym} to build end-of-day chains from; "
                            "check the options download")
        with atomic_dir(root / "merged" / sym, force=True) as tmp:
            spot.to_parquet(tmp / f"{sym}_bars_{s.timeframe}.parquet", index=False)
            chain.to_parquet(tmp / f"{sym}_chains_eod.parquet", index=False)
        merged = root / "merged" / sym
        market = FilesMarket(merged / f"{sym}_bars_{s.timeframe}.parquet", merged / f"{sym}_chains_eod.parquet",
                             sym, rate=s.rate, div_yield=s.dividend_yield)
        report.append(f"{sym}: validation {market.validate_all()}")  # validate
        bars = market.intraday_bars(s.start, s.end, s.expand_minutes)
        eod = prepare_chain(chain, s.rate, s.dividend_yield)
        res = expand_chains(eod, bars, root / "expanded" / sym, sym, s.rate, s.dividend_yield, s.dte_max,
                            force=True)
        report.append(res.summary())
        expanded = FilesMarket(merged / f"{sym}_bars_{s.timeframe}.parquet", res.out_file, sym, rate=s.rate,
                               div_yield=s.dividend_yield)
        report.append(describe(expanded))
        snaps = pd.DatetimeIndex(pd.read_parquet(res.out_file, columns=["quote_date"])["quote_date"].unique())
        al = align_chains(pd.DatetimeIndex(bars.index), snaps, sym, source=res.out_file.name,
                          max_stale_fraction=1.0)
        days = sorted({d.date() for d in pd.DatetimeIndex(bars.index).tz_convert("America/New_York")})
        have = {d.date() for d in snaps.tz_convert("America/New_York")}
        dropped = [str(d) for d in days if d not in have]
        report.append(_alignment_text(sym, al.diagnostics, len(days) - len(dropped), dropped))
        report.append(f"  lag limit for {sym}: {lag_limit_seconds(sym)} s")
    text = "\n".join(report) + "\n"
    with atomic_dir(root / "report", force=True) as tmp:
        (tmp / "alignment.txt").write_text(text, encoding="utf-8")
        _pdf(text, tmp / "alignment.pdf")
    return text
