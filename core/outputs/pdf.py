"""PDF research report of one backtest, rebuilt from the run folder's saved files alone (SPEC §8).

Sections (in order): Run identity, Metrics, Equity and drawdown, Monthly returns, Trade P&L
distribution, Entry and holding, Exit reasons, Regimes, Portfolio Greeks, Factor attribution,
Trades, Risk: VaR and CVaR, Appendix: configuration.  Charts come from ``core.outputs.charts`` as PNG
bytes kept in memory; a chart with nothing to show is replaced by a sentence.  The PDF is
written under a temporary name in the run folder and renamed into place, so a crash leaves
no half-written report.  The text depends on the saved files only (no clock, no paths), so
rebuilding a run gives the same text; reportlab's invariant mode keeps the bytes stable too.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core.outputs import charts
from core.outputs.atomic import add_to_marker, is_previous_run
from core.outputs.report_data import (
    VAR_KEY,
    RunFiles,
    category_stats,
    daily_pnl,
    format_metric,
    format_usd,
    is_risk_key,
    load_run,
    monthly_returns,
    regime_names,
    risk_label,
    skip_reasons,
    trade_measures,
    var_levels,
)
from core.outputs.report_data import local_times as _local

NO_TRADES = "No trades in this run."
CATEGORICAL_FACTORS = ("regime_code",)  # factor_attribution names shown per category, never as a mean
MARGIN = 0.5 * inch
FRAME_WIDTH = A4[0] - 2 * MARGIN
MAX_CHART_HEIGHT = 0.8 * (A4[1] - 2 * MARGIN)
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
H1 = ParagraphStyle("h1", parent=_STYLES["Heading1"], fontSize=14, leading=17, spaceBefore=10, spaceAfter=6,
                    keepWithNext=1)
H1_FLOW = ParagraphStyle("h1flow", parent=H1, keepWithNext=0)  # title before a long table that may split
TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontSize=18, leading=22)
CODE = ParagraphStyle("code", parent=_STYLES["Code"], fontSize=7, leading=8.4, leftIndent=0)


# --------------------------------------------------------------------------- flowable helpers


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(text), style)


def _chart(png: bytes | None, sentence: str) -> Flowable:
    """The chart scaled to the frame width, or ``sentence`` when there is nothing to draw."""
    if png is None:
        return _p(sentence)
    w, h = ImageReader(io.BytesIO(png)).getSize()
    scale = min(FRAME_WIDTH / w, MAX_CHART_HEIGHT / h)  # tall charts (many years/factors) shrink to fit a page
    return Image(io.BytesIO(png), width=w * scale, height=h * scale)


def _table(rows: list[list[Any]], widths: Sequence[float] | None = None, font: float = 8, long: bool = False,
           left: tuple[int, ...] = (0,)) -> Table:
    """Grid table with a shaded header row that repeats on every page; columns in ``left`` are
    left-aligned, the others (numbers) right-aligned."""
    cls = LongTable if long else Table
    cells = [[c if isinstance(c, Flowable) else str(c) for c in row] for row in rows]
    table = cls(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", font, font + 2), ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", font),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe6ee")), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        *(("ALIGN", (c, 0), (c, -1), "LEFT") for c in left),
    ]))
    return table


def _stats_table(stats: pd.DataFrame, label: str) -> Table:
    rows: list[list[Any]] = [[label, "trades", "win rate", "total P&L", "mean P&L"]]
    for name, r in stats.iterrows():
        rows.append([name, int(r["trades"]), f"{r['win_rate'] * 100:.1f}%", format_usd(r["total_pnl"]),
                     format_usd(r["mean_pnl"])])
    return _table(rows, [150, 60, 60, 90, 90])


# --------------------------------------------------------------------------- sections


def _identity(run: RunFiles) -> list[Flowable]:
    rec, data = run.run, run.run.get("data", {})
    first, last = (data.get("range") or ["?", "?"])[:2]
    until = data.get("vix_proxy_until")
    if not until:
        vix = "real VIX throughout"
    elif data.get("vix_proxy_in_range"):
        vix = f"PROXY: VIX is a modelled proxy up to {until} (inside this run's range), real VIX after"
    else:
        vix = f"real VIX throughout this range (the source uses a modelled proxy only up to {until})"
    rows = [
        ["Run id", rec.get("run_id", "?")], ["Config hash", rec.get("config_hash", "?")],
        ["Data source", f"{data.get('name', '?')} ({data.get('underlying', 'SPY')})"],
        ["Data available", f"{data.get('first_date', '?')} to {data.get('last_date', '?')}"],
        ["Backtest range", f"{first} to {last}, {data.get('bars', '?')} bars of {data.get('bar_minutes', '?')} min"],
        ["Intraday bars", "SYNTHESISED from real daily OHLCV (not observed intraday prices)"
         if data.get("intraday_synthetic") else "observed intraday bars"],
        ["VIX", vix],
        ["Option chains", "MODELLED from a volatility surface (not observed quotes)"
         if data.get("chains_modelled") else "observed quotes"],
        ["Seed", rec.get("seed", "?")], ["Code revision", rec.get("code_revision", "?")],
    ]
    cells = [[_p(k, BODY), _p(str(v), BODY)] for k, v in rows]
    table = Table(cells, colWidths=[100, FRAME_WIDTH - 100], hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f6"))]))
    notes = [_p(f"- {n}", SMALL) for n in data.get("notes", [])]
    return [_p("Quantor-MTFuzz backtest report", TITLE), _p("Run identity", H1), table, Spacer(1, 4),
            *([_p("Data notes:", SMALL), *notes] if notes else [])]


def _metrics(run: RunFiles) -> list[Flowable]:
    base = run.baseline or {}
    rows: list[list[Any]] = [["metric", "strategy", f"baseline ({base.get('baseline', 'n/a')})"]]
    for key, value in run.metrics.items():
        if is_risk_key(key):
            continue
        rows.append([METRIC_LABELS.get(key, key.replace("_", " ")), format_metric(key, value),
                     format_metric(key, base[key]) if key in base else "-"])
    note = ("Fractions are shown in percent; dollars as $. Baseline: the starting cash held in the underlying. "
            "VaR, CVaR and Monte Carlo measures are in the section Risk: VaR and CVaR.")
    return [_p("Metrics", H1), _table(rows, [200, 110, 170]), Spacer(1, 3), _p(note, SMALL)]


def _equity(run: RunFiles) -> list[Flowable]:
    dd = run.metrics.get("max_drawdown_pct")
    usd = format_metric("max_drawdown", run.metrics.get("max_drawdown"))
    text = f"Deepest drawdown {format_metric('max_drawdown_pct', dd)} ({usd}) below the running peak."
    png = charts.equity_drawdown_png(run.equity)
    return [_p("Equity and drawdown", H1),
            KeepTogether([_chart(png, "The equity curve has fewer than two bars."), _p(text)])]


def _monthly(run: RunFiles) -> list[Flowable]:
    png = charts.monthly_returns_png(monthly_returns(run))
    return [_p("Monthly returns", H1), _chart(png, "No daily equity closes to compute monthly returns from.")]


def _pnl(run: RunFiles) -> list[Flowable]:
    if run.trades.empty:
        return [_p("Trade P&L distribution", H1), _p(NO_TRADES)]
    pnl = run.trades["pnl"].to_numpy(float)
    text = (f"{pnl.size} trades: {int((pnl > 0).sum())} winners, {int((pnl < 0).sum())} losers; "
            f"median {format_usd(float(np.median(pnl)))}, best {format_usd(pnl.max())}, worst {format_usd(pnl.min())}.")
    png = charts.histogram_png(pnl, "trade P&L ($, after fees)", "P&L per position")
    return [_p("Trade P&L distribution", H1), KeepTogether([_chart(png, "No finite trade P&L."), _p(text)])]


def _entry(run: RunFiles) -> list[Flowable]:
    out: list[Flowable] = [_p("Entry and holding", H1)]
    if run.trades.empty:
        out.append(_p(NO_TRADES))
    else:
        m = trade_measures(run.trades)
        out.append(_chart(charts.entry_holding_png(m["dte"], m["credit_width"], m["held_days"]), NO_TRADES))
        rows: list[list[Any]] = [["measure", "min", "median", "mean", "max"]]
        for col, label, scale, fmt in (("dte", "DTE at entry (days)", 1, "{:.0f}"),
                                       ("credit_width", "credit / width (%)", 100, "{:.1f}"),
                                       ("held_days", "days held", 1, "{:.1f}")):
            x = m[col].to_numpy(float) * scale
            rows.append([label, *(fmt.format(f(x)) for f in (np.nanmin, np.nanmedian, np.nanmean, np.nanmax))])
        out += [Spacer(1, 4), _table(rows, [150, 60, 60, 60, 60])]
    kinds, reasons = skip_reasons(run.decisions)
    if kinds:
        summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        out += [Spacer(1, 4), _p(f"decisions.jsonl: {summary}. Most common reasons to skip an entry:")]
        out.append(_table([["skip reason (numbers as #)", "sessions"], *map(list, reasons)], [380, 60]) if reasons
                   else _p("none"))
    return out


def _exits(run: RunFiles) -> list[Flowable]:
    if run.trades.empty:
        return [_p("Exit reasons", H1), _p(NO_TRADES)]
    stats = category_stats(run.trades["pnl"], run.trades["exit_reason"])
    return [_p("Exit reasons", H1), _chart(charts.category_png(stats, "Exits by reason"), NO_TRADES),
            Spacer(1, 4), _stats_table(stats, "exit reason")]


def _regimes(run: RunFiles) -> list[Flowable]:
    head = _p("Regimes", H1)
    if run.trades.empty:
        return [head, _p(NO_TRADES)]
    codes = run.trades.get("entry_regime_code")
    if codes is None or not np.isfinite(codes.to_numpy(float)).any():
        return [head, _p("Regime at entry is not available in this run: trades.csv has no entry_regime_code values.")]
    stats = category_stats(run.trades["pnl"], regime_names(codes))
    out = [head, _chart(charts.category_png(stats, "Trades and P&L by regime at entry"), NO_TRADES), Spacer(1, 4),
           _stats_table(stats, "regime at entry")]
    kinds = run.trades["structure"].astype(str).to_numpy() if "structure" in run.trades else np.array([])
    if len(kinds) and (kinds != kinds[0]).any():  # the selector mixes structures
        by_structure = category_stats(run.trades["pnl"], run.trades["structure"].astype(str))
        out += [Spacer(1, 6), _p("Trades and P&L by structure (the selector's choices)."), Spacer(1, 2),
                _stats_table(by_structure, "structure")]
    return out


def _greeks(run: RunFiles) -> list[Flowable]:
    if run.greeks is None:
        return [_p("Portfolio Greeks", H1), _p("greeks.csv is not in this run folder; Greeks are not available.")]
    png = charts.greeks_png(run.greeks)
    if png is None:
        return [_p("Portfolio Greeks", H1), _p("The book held no options in this run: every Greek is zero.")]
    units = "Delta in shares, gamma in shares per $1, vega in $ per volatility point, theta in $ per day."
    return [_p("Portfolio Greeks", H1), KeepTogether([_chart(png, ""), _p(units, SMALL)])]


def _factors(run: RunFiles) -> list[Flowable]:
    head = _p("Factor attribution", H1)
    if run.factors is None or run.factors.empty or "delta_f" not in run.factors:
        return [head, _p("Factor attribution is not available in this run (no factor_attribution.csv).")]
    factors = run.factors[~run.factors["factor"].astype(str).isin(CATEGORICAL_FACTORS)]
    cols = [c for c in ("factor", "mean_win", "mean_lose", "delta_f", "ci_low", "ci_high", "n_win", "n_lose")
            if c in factors]
    rows: list[list[Any]] = [cols]
    for _, r in factors.iterrows():
        rows.append([r[c] if c == "factor" or isinstance(r[c], str) else f"{r[c]:.4g}" for c in cols])
    note = ("Bars: delta_f (winners' mean minus losers' mean at entry) divided by its CI half-width, so factors in "
            "different units compare; darker bars have a CI that excludes zero. The table gives raw values. "
            "The regime at entry is a category, not a magnitude: it is never averaged here; trades, win rate and "
            "P&L per regime are in the table below.")
    out: list[Flowable] = [head, _chart(charts.factor_png(factors), "No factor has a finite delta_f and "
                                        "confidence interval."), _p(note, SMALL), Spacer(1, 4),
                           _table(rows, [110] + [52] * (len(cols) - 1), font=7)]
    codes = run.trades.get("entry_regime_code") if not run.trades.empty else None
    if codes is not None and np.isfinite(codes.to_numpy(float)).any():
        stats = category_stats(run.trades["pnl"], regime_names(codes))
        out += [Spacer(1, 6), KeepTogether([_p("Categorical factor: regime at entry, per category", SMALL),
                                            _stats_table(stats, "regime at entry")])]
    return out


TRADE_COLUMNS = ("id", "entry (NY)", "exit (NY)", "expiry", "qty", "strikes", "credit", "max loss", "exit debit",
                 "fees", "P&L", "exit reason")
TRADE_WIDTHS = [30, 62, 62, 44, 20, 64, 32, 36, 38, 30, 44, 60]


def _trades(run: RunFiles) -> list[Flowable]:
    if run.trades.empty:
        return [_p("Trades", H1), _p(NO_TRADES)]
    t = run.trades.assign(_entry=_local(run.trades["entry_time"])).sort_values(["_entry", "position_id"],
                                                                               kind="stable")
    t = t.drop(columns="_entry").reset_index(drop=True)
    entry = _local(t["entry_time"]).dt.strftime("%Y-%m-%d %H:%M")
    exit_ = _local(t["exit_time"]).dt.strftime("%Y-%m-%d %H:%M")
    rows: list[list[Any]] = [list(TRADE_COLUMNS)]
    for i, r in enumerate(t.itertuples(index=False)):
        strikes = str(r.legs)
        rows.append([r.position_id, entry.iloc[i], exit_.iloc[i], r.expiry, r.contracts, strikes, f"{r.credit:.3f}",
                     f"{r.max_loss:.3f}", f"{r.exit_debit:.3f}", f"{r.fees:.2f}", f"{r.pnl:,.2f}", r.exit_reason])
    note = ("Legs: side (+ long, - short), ratio, right and strike of each leg. Credit, max loss and exit debit "
            "in $ per share; fees and P&L in $ for the whole position. In order of entry; times in New York "
            "(the CSV files hold the same instants in UTC).")
    return [CondPageBreak(2.5 * inch), _p("Trades", H1_FLOW), _p(note, SMALL),
            _table(rows, TRADE_WIDTHS, font=6.5, long=True, left=(0, 1, 2, 3, 5, 11))]


def _risk(run: RunFiles) -> list[Flowable]:
    """VaR/CVaR by level and method, the Monte Carlo final-equity distribution, daily P&L histogram."""
    out: list[Flowable] = [_p("Risk: VaR and CVaR", H1)]
    levels = var_levels(run.metrics)
    if levels.empty:
        out.append(_p("VaR and CVaR are not recorded in this run's metrics.json."))
    else:
        rows = [["confidence", *levels.columns]]
        for level, r in levels.iterrows():
            rows.append([level, *("n/a" if v is None or not math.isfinite(v) else format_usd(v) for v in r)])
        out += [_table(rows, [70] + [100] * len(levels.columns)),
                _p("VaR: the one-day loss not exceeded at the stated confidence; CVaR: the mean loss beyond it. "
                   "Dollars, positive numbers are losses; historical from daily equity closes, Monte Carlo from a "
                   "bootstrap of them.", SMALL)]
    other = [k for k in run.metrics if is_risk_key(k) and not VAR_KEY.match(k)]
    if other:
        rows = [["Monte Carlo: trades resampled with replacement", "value"]]
        rows += [[risk_label(k), format_metric(k, run.metrics[k])] for k in other]
        out += [Spacer(1, 6), _table(rows, [240, 100])]
    lines = {f"{c} {lvl}": float(v) for c in levels.columns if c.startswith("historical")
             for lvl, v in levels[c].items() if isinstance(v, int | float) and math.isfinite(v)}
    png = charts.daily_pnl_png(daily_pnl(run), lines)
    return [*out, Spacer(1, 6), _chart(png, "Daily P&L was zero on every session (or fewer than two sessions).")]


def config_lines(tree: dict[str, Any], indent: int = 0) -> list[str]:
    """The nested config as ``key: value`` lines, two spaces per level, lists inline."""
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines += [f"{' ' * indent}{key}:", *config_lines(value, indent + 2)]
        else:
            shown = json.dumps(value) if isinstance(value, list | tuple | str | None) else str(value).lower() \
                if isinstance(value, bool) else str(value)
            lines.append(f"{' ' * indent}{key}: {shown}")
    return lines


def resolved_config(run: RunFiles) -> dict[str, Any]:
    """The saved config a backtest reads, with the dates the run actually used in place of unset ones."""
    tree = json.loads(json.dumps(run.run.get("config", {})))
    for other_mode in ("optimizer", "live", "pipeline"):  # not read by a backtest: kept in run.json only
        tree.pop(other_mode, None)
    first_last = (run.run.get("data", {}).get("range") or [None, None])[:2]
    section = tree.get("backtest")
    if isinstance(section, dict):
        for key, day in zip(("start", "end"), first_last, strict=True):
            if section.get(key) is None and day is not None:
                section[key] = f"{day} (default: resolved from the data)"
    return tree


APPENDIX_ROW_LINES = 12  # lines per table row, so the two-column appendix can break between rows


def _appendix(run: RunFiles) -> list[Flowable]:
    """Config in two columns split at a section boundary, as table rows of a few lines each so it
    flows over a page break instead of forcing one (no mostly empty page before it)."""
    lines = config_lines(resolved_config(run))
    starts = [i for i, line in enumerate(lines) if not line.startswith(" ")] + [len(lines)]
    cut = min(starts, key=lambda i: abs(2 * i - len(lines)))
    half = FRAME_WIDTH / 2 - 6
    left, right = lines[:cut], lines[cut:]
    n_rows = max(math.ceil(len(left) / APPENDIX_ROW_LINES), math.ceil(len(right) / APPENDIX_ROW_LINES), 1)

    def block(part: list[str], k: int) -> Flowable:
        chunk = part[k * APPENDIX_ROW_LINES:(k + 1) * APPENDIX_ROW_LINES]
        return Preformatted("\n".join(chunk), CODE, maxLineLength=int(half / 4.2), newLineChars="    ")

    rows = [[block(left, k), block(right, k)] for k in range(n_rows)]
    table = Table(rows, colWidths=[half + 6, half + 6], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBEFORE", (1, 0), (1, -1), 0.25, colors.grey),
                               ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return [CondPageBreak(1.5 * inch), _p("Appendix: configuration", H1_FLOW), table]


SECTIONS = (_identity, _metrics, _equity, _monthly, _pnl, _entry, _exits, _regimes, _greeks, _factors, _trades,
            _risk, _appendix)


def report_story(run: RunFiles) -> list[Flowable]:
    """All flowables of the report (section titles keep with their next block)."""
    story: list[Flowable] = []
    for section in SECTIONS:
        parts = section(run)
        story += [KeepTogether(parts[:3]), *parts[3:]] if section is _identity else parts
    return story


# --------------------------------------------------------------------------- document


class _ReportDoc(SimpleDocTemplate):
    """A4 document that puts every section title into the PDF outline and records its layout:
    ``page_fill`` (fraction of the frame height used on each page) and ``orphans`` (section
    titles whose next flowable landed on a later page)."""

    _pending_title: tuple[Paragraph, int] | None = None
    page_fill: list[float]
    orphans: list[str]

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802 - reportlab hook name
        pending = self._pending_title
        if pending is not None and flowable is not pending[0]:
            if self.page != pending[1]:
                self.orphans.append(pending[0].getPlainText())
            self._pending_title = None
        if isinstance(flowable, Paragraph) and flowable.style.name.startswith(H1.name):
            key = f"s{len(self._outline_keys)}"
            self._outline_keys.append(key)
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.getPlainText(), key, level=0)
            self._pending_title = (flowable, self.page)

    def afterPage(self) -> None:  # noqa: N802 - reportlab hook name
        frame = self.frame
        usable = frame._height - frame._topPadding - frame._bottomPadding
        top = frame._y1 + frame._height - frame._topPadding
        self.page_fill.append(round(min(max((top - frame._y) / usable, 0.0), 1.0), 3))


BOTTOM_MARGIN = 0.6 * inch


def write_pdf(story: list[Flowable], target: Path, title: str, footer: str,
              layout: dict[str, Any] | None = None) -> Path:
    """Build ``story`` into ``target`` (A4, outline of H1 titles, invariant bytes) via a temporary file;
    ``layout`` (when given) receives ``page_fill`` and ``orphans`` (see ``_ReportDoc``)."""
    tmp = target.parent / f".{target.name}.tmp{os.getpid()}"

    def draw_footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN, 0.3 * inch, f"Quantor-MTFuzz - {footer}")
        canvas.drawRightString(A4[0] - MARGIN, 0.3 * inch, f"page {doc.page}")
        canvas.restoreState()

    doc = _ReportDoc(str(tmp), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                     bottomMargin=BOTTOM_MARGIN, title=title, author="Quantor-MTFuzz", invariant=True)
    doc._outline_keys, doc._pending_title, doc.page_fill, doc.orphans = [], None, [], []
    try:
        doc.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
        os.replace(tmp, target)
        if layout is not None:
            layout.update(page_fill=doc.page_fill, orphans=doc.orphans)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def build_report(run_dir: Path | str, out_name: str = "report.pdf", layout: dict[str, Any] | None = None) -> Path:
    """Build ``<run_dir>/<out_name>`` from the saved run files; returns its path."""
    run = load_run(run_dir)
    run_id = str(run.run.get("run_id", run.folder.name))
    return write_pdf(report_story(run), run.folder / out_name, f"Backtest report {run_id}", run_id, layout)



def run_report_cli(run_dir: str) -> int:
    """``--mode report --run DIR``: validate the folder, rebuild its PDF, print the path."""
    path = build_report(run_dir)
    if is_previous_run(path.parent):
        add_to_marker(path.parent, path.name)  # the tool's own file: a later --force may replace it
    print(f"report: {path}")
    return 0
