"""PDF research report of one backtest, rebuilt from the run folder's saved files alone (SPEC §8).

Reads ``run.json``, ``metrics.json``, ``equity.csv`` and ``trades.csv`` (required) and, when
present, ``baseline_metrics.json``, ``greeks.csv``, ``factor_attribution.csv`` and
``decisions.log``; writes ``report.pdf`` atomically (temporary name, then rename).  The
derived measures are:

* monthly return ``R_m = C_m / C_{m-1} - 1`` with ``C_m`` the last daily equity close of
  month ``m`` and ``C_0`` the starting cash;
* daily P&L ``E_t - E_{t-1}`` of daily equity closes with ``E_0`` the starting cash;
* DTE at entry ``= expiry - entry date`` (calendar days, New York date of the entry);
* credit / width ``= credit / max(short_put - long_put, long_call - short_call)``;
* days held ``= (exit_time - entry_time) / 1 day``.

The report text depends on the saved files only (no clock, no paths), so rebuilding a run
gives the same text; reportlab's invariant mode keeps the bytes stable as well.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import yaml
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (Flowable, Image, KeepTogether, LongTable, PageBreak, Paragraph, Preformatted,
                                SimpleDocTemplate, Spacer, Table, TableStyle)

from analytics.metrics import daily_closes
from core import charts
from core.dto import DataError, Regime

REQUIRED_FILES = ("run.json", "metrics.json", "equity.csv", "trades.csv")
NO_TRADES = "No trades in this run."
NY = "America/New_York"
MARGIN = 0.5 * inch
FRAME_WIDTH = A4[0] - 2 * MARGIN
PCT_KEYS = frozenset({"total_return", "cagr", "max_drawdown_pct", "volatility", "win_rate", "exposure"})
USD_KEYS = frozenset({"start_cash", "end_equity", "net_profit", "max_drawdown", "expectancy", "avg_win", "avg_loss"})
METRIC_LABELS = {
    "start_cash": "Start cash", "end_equity": "End equity", "net_profit": "Net profit",
    "total_return": "Total return", "cagr": "CAGR (252-session)", "max_drawdown": "Max drawdown ($)",
    "max_drawdown_pct": "Max drawdown (%)", "sharpe": "Sharpe (daily, annualised)",
    "sortino": "Sortino (daily, annualised)", "volatility": "Volatility (annualised)", "days": "Sessions",
    "trades": "Trades", "win_rate": "Win rate", "profit_factor": "Profit factor", "expectancy": "Expectancy per trade",
    "avg_win": "Average win", "avg_loss": "Average loss", "win_loss_ratio": "Win/loss ratio",
    "exposure": "Exposure (bars with a position)", "fitness": "Fitness (net profit / |max DD|)",
}
_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=8.5)
H1 = ParagraphStyle("h1", parent=_STYLES["Heading1"], fontSize=14, leading=17, spaceBefore=10, spaceAfter=6)
TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontSize=18, leading=22)
CODE = ParagraphStyle("code", parent=_STYLES["Code"], fontSize=7, leading=8.4)


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Everything the report reads from one run folder."""

    folder: Path
    run: dict[str, Any]
    metrics: dict[str, Any]
    baseline: dict[str, Any] | None
    trades: pd.DataFrame
    equity: pd.DataFrame
    greeks: pd.DataFrame | None
    factors: pd.DataFrame | None
    decisions: list[str]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): rerun the backtest") from exc


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV as a frame; a header-less empty file (a run without trades) is an empty frame."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV ({exc}): rerun the backtest") from exc


def load_run(run_dir: Path | str) -> RunFiles:
    """Read a run folder; DataError (one line) when the folder or a required file is missing."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise DataError(f"run folder {folder} does not exist: pass the folder of a finished backtest "
                        "(reports/<run-id>/) with --run")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} is missing: rerun the backtest with --out {folder} to rewrite "
                            f"the run folder ({', '.join(REQUIRED_FILES)} are required)")
    optional = {name: folder / name for name in ("baseline_metrics.json", "greeks.csv", "factor_attribution.csv",
                                                 "decisions.log")}
    equity = _read_csv(folder / "equity.csv")
    if not {"timestamp", "equity"} <= set(equity.columns):
        raise DataError(f"{folder / 'equity.csv'} lacks the timestamp/equity columns: rerun the backtest")
    return RunFiles(
        folder=folder, run=_read_json(folder / "run.json"), metrics=_read_json(folder / "metrics.json"),
        baseline=_read_json(optional["baseline_metrics.json"]) if optional["baseline_metrics.json"].is_file() else None,
        trades=_read_csv(folder / "trades.csv"), equity=equity,
        greeks=_read_csv(optional["greeks.csv"]) if optional["greeks.csv"].is_file() else None,
        factors=_read_csv(optional["factor_attribution.csv"]) if optional["factor_attribution.csv"].is_file() else None,
        decisions=(optional["decisions.log"].read_text(encoding="utf-8").splitlines()
                   if optional["decisions.log"].is_file() else []),
    )


# --------------------------------------------------------------------------- derived measures


def format_usd(value: float) -> str:
    """``-$1,234.56`` / ``$1,234.56``."""
    return f"-${abs(value):,.2f}" if value < 0 else f"${value:,.2f}"


def format_metric(key: str, value: Any) -> str:
    """Deterministic text of one metrics.json value: fractions as percent with two decimals,
    dollars as ``$1,234.56``, counts as integers, ratios with three decimals, None as ``n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True)
    if key in PCT_KEYS or key.endswith("_pct"):
        return f"{value * 100:.2f}%"
    if key in USD_KEYS or key.startswith(("var_", "cvar_", "mc_var", "mc_cvar", "mc_equity", "mc_final")):
        return format_usd(float(value))
    if isinstance(value, int):
        return f"{value:,d}"
    return f"{value:,.3f}"


def _local(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert(NY)


def start_cash(run: RunFiles) -> float:
    value = run.metrics.get("start_cash")
    return float(value) if value is not None else float(run.equity["equity"].iloc[0])


def daily_equity(run: RunFiles) -> pd.Series:
    """Last equity mark of each New York session."""
    eq = pd.Series(run.equity["equity"].to_numpy(float), index=pd.DatetimeIndex(_local(run.equity["timestamp"])))
    return daily_closes(eq)


def monthly_returns(run: RunFiles) -> pd.DataFrame:
    """Year x month (1..12) table of ``C_m / C_{m-1} - 1`` (fractions), ``C_0`` = start cash."""
    closes = daily_equity(run)
    month_end = closes.groupby(closes.index.to_period("M")).last()
    prev = month_end.shift(1)
    prev.iloc[0] = start_cash(run)
    ret = month_end / prev - 1.0
    frame = pd.DataFrame({"year": ret.index.year, "month": ret.index.month, "ret": ret.to_numpy(float)})
    return frame.pivot_table(index="year", columns="month", values="ret").reindex(columns=range(1, 13))


def daily_pnl(run: RunFiles) -> np.ndarray:
    """``E_t - E_{t-1}`` of daily closes, ``E_0`` = start cash (dollars)."""
    closes = daily_equity(run).to_numpy(float)
    return np.diff(np.concatenate(([start_cash(run)], closes)))


def trade_measures(trades: pd.DataFrame) -> pd.DataFrame:
    """Per trade: ``dte`` at entry, ``credit_width`` and ``held_days`` (see module docstring)."""
    entry, exit_ = _local(trades["entry_time"]), _local(trades["exit_time"])
    expiry = pd.to_datetime(trades["expiry"])
    put_w = trades["short_put_strike"] - trades["long_put_strike"]
    call_w = trades["long_call_strike"] - trades["short_call_strike"]
    return pd.DataFrame({
        "dte": (expiry - entry.dt.tz_localize(None).dt.normalize()).dt.days.to_numpy(float),
        "credit_width": (trades["credit"] / np.maximum(put_w, call_w)).to_numpy(float),
        "held_days": ((exit_ - entry).dt.total_seconds() / 86400.0).to_numpy(float),
    })


def regime_names(codes: pd.Series) -> pd.Series:
    """Regime code -> name by the order of ``core.dto.Regime`` (``list(Regime)[code]``)."""
    members = list(Regime)

    def name(code: float) -> str:
        if not math.isfinite(code):
            return "unknown"
        k = int(code)
        return members[k].value if 0 <= k < len(members) and k == code else f"code {code:g}"

    return codes.astype(float).map(name)


def category_stats(pnl: pd.Series, category: pd.Series) -> pd.DataFrame:
    """Per category: trades, win rate, total and mean P&L (dollars), most trades first."""
    grouped = pd.DataFrame({"cat": category.astype(str), "pnl": pnl.astype(float)}).groupby("cat")["pnl"]
    stats = pd.DataFrame({"trades": grouped.size(), "win_rate": grouped.apply(lambda s: float((s > 0).mean())),
                          "total_pnl": grouped.sum(), "mean_pnl": grouped.mean()})
    return stats.sort_values(["trades", "total_pnl"], ascending=[False, True], kind="stable")


def skip_reasons(decisions: list[str], top: int = 6) -> tuple[Counter[str], list[tuple[str, int]]]:
    """Counts of ENTER/SKIP/EXIT lines and the most common skip reasons (numbers shown as #)."""
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for line in decisions:
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        kinds[parts[1]] += 1
        if parts[1] == "SKIP" and len(parts) == 3:
            reasons[re.sub(r"\d+(\.\d+)?", "#", parts[2].split(" | ")[0].strip())] += 1
    return kinds, reasons.most_common(top)


# --------------------------------------------------------------------------- flowable helpers


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(text), style)


def _chart(png: bytes | None, sentence: str) -> Flowable:
    """The chart scaled to the frame width, or ``sentence`` when there is nothing to draw."""
    if png is None:
        return _p(sentence)
    w, h = ImageReader(io.BytesIO(png)).getSize()
    return Image(io.BytesIO(png), width=FRAME_WIDTH, height=FRAME_WIDTH * h / w)


def _table(rows: list[list[Any]], widths: list[float] | None = None, font: float = 8, long: bool = False) -> Table:
    """Grid table with a shaded header row that repeats on every page."""
    cls = LongTable if long else Table
    cells = [[c if isinstance(c, Flowable) else str(c) for c in row] for row in rows]
    table = cls(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", font, font + 2), ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", font),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe6ee")), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return table


def _stats_table(stats: pd.DataFrame, label: str) -> Table:
    rows: list[list[Any]] = [[label, "trades", "win rate", "total P&L", "mean P&L"]]
    for name, r in stats.iterrows():
        rows.append([name, int(r["trades"]), f"{r['win_rate'] * 100:.1f}%", format_usd(r["total_pnl"]),
                     format_usd(r["mean_pnl"])])
    return _table(rows, [150, 60, 60, 90, 90])
