"""PDF reports of a stress run and of the benchmark, rebuilt from their saved JSON alone.

``build_stress_report(stress_dir)`` reads ``stress_report.json`` (written by ``core.stress``)
and writes ``stress_report.pdf`` beside it with the sections Stress identity, Scenario
revaluation, Historical windows and Parameter sensitivity.  ``build_benchmark_report(json)``
turns ``reports/benchmark.json`` into a one-page ``benchmark.pdf``.  Styles, table builder,
chart scaling and the outline-making document class come from ``core.report_pdf``; PNG
rendering from ``core.charts``.  Dollar amounts use ``format_usd`` (``-$1,234.56``), so the
text is a deterministic function of the JSON; each PDF is written under a temporary name and
renamed into place.

The scenario chart compares the full revaluation ``dV = V(S1, sigma1, tau1) - V(S0, sigma0, tau0)``
with the delta-gamma-vega(-theta) approximation of ``risk.scenarios``.  The defined-risk bound
holds on the P&L from entry, ``V1 - V_entry >= -B``; on the chart's axis (P&L from today's
marks ``V0``) it is the floor ``dV >= -B - (V0 - V_entry)``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import inch
from reportlab.platypus import Flowable, KeepInFrame, KeepTogether, Spacer, Table, TableStyle

from core import charts
from core.dto import DataError
from core.report_data import format_usd
from core.report_pdf import BODY, FRAME_WIDTH, H1, MARGIN, SMALL, TITLE, _chart, _p, _ReportDoc, _table

STRESS_JSON = "stress_report.json"
STRESS_PDF = "stress_report.pdf"
STRESS_KEYS = ("run", "portfolio", "scenarios", "historical", "sensitivity", "data_flags")
STRESS_SECTIONS = ("Stress identity", "Scenario revaluation", "Historical windows", "Parameter sensitivity")
BOTTOM_MARGIN = 0.6 * inch
TARGET_X_PLAIN = re.compile(r"<=\s*([0-9.]+)\s*x\s*plain")


# --------------------------------------------------------------------------- formatting and input


def fmt_num(value: Any, digits: int = 2) -> str:
    """``n/a`` for None, ``yes``/``no`` for booleans, else ``{value:,.<digits>f}``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,.{digits}f}"


def fmt_usd(value: Any) -> str:
    """``format_usd`` with ``n/a`` for None."""
    return "n/a" if value is None else format_usd(float(value))


def fmt_pct(value: Any) -> str:
    """A fraction as percent with two decimals (``-0.0083`` -> ``-0.83%``)."""
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _read_json(path: Path, what: str, remedy: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} is missing: {remedy}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}): {remedy}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a {what} (expected a JSON object): {remedy}")
    return data


def load_stress(stress_dir: Path | str) -> dict[str, Any]:
    """The payload of ``<stress_dir>/stress_report.json``; DataError (one line) if absent or malformed."""
    folder = Path(stress_dir)
    remedy = "rerun `python core/main.py --mode stress --out DIR` to rewrite the stress folder"
    if not folder.is_dir():
        raise DataError(f"stress folder {folder} does not exist: {remedy}")
    payload = _read_json(folder / STRESS_JSON, "stress report", remedy)
    missing = [k for k in STRESS_KEYS if k not in payload]
    if missing or not isinstance(payload["scenarios"], list) or not isinstance(payload["portfolio"], dict):
        raise DataError(f"{folder / STRESS_JSON} lacks {', '.join(missing) or 'a valid scenarios list'}: {remedy}")
    return payload


def write_pdf(story: list[Flowable], target: Path, title: str, footer: str) -> Path:
    """Build ``story`` into ``target`` (A4, outline of H1 titles, invariant bytes) via a temporary file."""
    tmp = target.parent / f".{target.name}.tmp{os.getpid()}"

    def draw_footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN, 0.3 * inch, f"Quantor-MTFuzz - {footer}")
        canvas.drawRightString(A4[0] - MARGIN, 0.3 * inch, f"page {doc.page}")
        canvas.restoreState()

    doc = _ReportDoc(str(tmp), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                     bottomMargin=BOTTOM_MARGIN, title=title, author="Quantor-MTFuzz", invariant=True)
    doc._outline_keys = []
    try:
        doc.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _key_value_table(rows: Sequence[tuple[str, str]], key_width: float = 110) -> Table:
    cells = [[_p(k), _p(v)] for k, v in rows]
    table = Table(cells, colWidths=[key_width, FRAME_WIDTH - key_width], hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f6"))]))
    return table


def _span_skipped(table: Table, rows: Sequence[int], first_col: int) -> Table:
    """Merge the cells from ``first_col`` to the end of each skipped row (they hold the reason)."""
    table.setStyle(TableStyle([cmd for r in rows for cmd in (("SPAN", (first_col, r), (-1, r)),
                                                              ("ALIGN", (first_col, r), (-1, r), "LEFT"))]))
    return table


# --------------------------------------------------------------------------- charts


def scenario_png(scenarios: Sequence[Mapping[str, Any]], loss_floor: float) -> bytes | None:
    """Grouped bars per scenario: full revaluation and Greek approximation (dollars), with the
    max-loss floor ``-B - (V0 - V_entry)`` as a dashed line; None without scenarios."""
    if not scenarios:
        return None
    names = [str(s["scenario"]) for s in scenarios]
    full = np.array([s.get("pnl_full") or 0.0 for s in scenarios], float)
    approx = np.array([s.get("pnl_approx") or 0.0 for s in scenarios], float)
    pos = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(charts.WIDTH_IN, 3.0))
    ax.bar(pos - 0.19, full, 0.38, color=charts.BLUE, label="full revaluation (BSM)")
    ax.bar(pos + 0.19, approx, 0.38, color="#e6a23c", label="delta-gamma-vega approximation")
    ax.axhline(loss_floor, color=charts.RED, ls="--", lw=1.1, label=f"max-loss bound ({format_usd(loss_floor)})")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xticks(pos, names)
    ax.set_ylabel("P&L from today's marks ($)")
    ax.set_ylim(min(loss_floor, full.min(), approx.min()) * 1.12, max(0.0, full.max(), approx.max()) * 1.15 + 1.0)
    ax.set_title("Scenario P&L: full revaluation vs Greek approximation")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return charts.png_bytes(fig)


def tornado_png(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Tornado of the net-profit change (dollars) per parameter, one bar each for one step down
    and up, parameters sorted by their largest |change|; a skipped step is marked as such."""
    params: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("parameter") not in (None, "base"):
            params.setdefault(str(r["parameter"]), {})[str(r.get("direction"))] = r
    if not any(r.get("net_profit_change") is not None for p in params.values() for r in p.values()):
        return None
    spread = {name: max(abs(r.get("net_profit_change") or 0.0) for r in d.values()) for name, d in params.items()}
    names = sorted(params, key=lambda n: -spread[n])
    fig, ax = plt.subplots(figsize=(charts.WIDTH_IN, 0.9 + 0.45 * len(names)))
    for offset, direction, color in ((-0.19, "down", "#5b8cc0"), (0.19, "up", "#e6a23c")):
        for i, name in enumerate(names):
            row = params[name].get(direction, {})
            change = row.get("net_profit_change")
            if change is None:
                ax.text(0.0, i + offset, f" {direction}: skipped", va="center", fontsize=6, color=charts.GREY)
                continue
            ax.barh(i + offset, change, 0.38, color=color, label=direction if i == 0 else None)
            ax.text(change, i + offset, f" {row.get('value'):g} ", va="center", fontsize=6,
                    ha="left" if change >= 0 else "right")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", lw=0.8)
    ax.margins(x=0.18)
    ax.set_xlabel("net profit change vs the base run ($); bar labels: the parameter value")
    ax.set_title("Parameter sensitivity: one step down and up")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return charts.png_bytes(fig)


def benchmark_png(workloads: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Horizontal bars of seconds per 10k bars for the backtest workloads (those with a ratio to
    plain Backtrader), the plain time as a dashed line, each ``<= Nx plain`` target as a tick."""
    rows = [w for w in workloads if w.get("ratio_vs_plain") is not None and w.get("seconds_per_10k_bars") is not None]
    if not rows:
        return None
    plain = next((float(w["seconds_per_10k_bars"]) for w in rows if float(w["ratio_vs_plain"]) == 1.0), None)
    values = np.array([float(w["seconds_per_10k_bars"]) for w in rows])
    targets = [TARGET_X_PLAIN.search(str(w.get("target", ""))) for w in rows]
    target_x = [float(t.group(1)) * plain if t and plain is not None else None for t in targets]
    pos = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(charts.WIDTH_IN, 0.9 + 0.4 * len(rows)))
    ax.barh(pos, values, color=[charts.GREY if w.get("target") == "reference" else charts.BLUE for w in rows])
    for i, w in enumerate(rows):
        ax.text(values[i], i, f" {values[i]:.3f} s ({float(w['ratio_vs_plain']):.2f}x plain)", va="center",
                fontsize=7)
    ticks = [(i, x) for i, x in enumerate(target_x) if x is not None]
    for k, (i, x) in enumerate(ticks):
        ax.plot([x, x], [i - 0.4, i + 0.4], color=charts.RED, lw=1.5, label="target" if k == 0 else None)
    if plain is not None:
        ax.axvline(plain, color="black", ls="--", lw=0.8, label="plain Backtrader")
    ax.set_yticks(pos, [str(w["workload"]) for w in rows])
    ax.invert_yaxis()
    ax.set_xlim(0.0, max([float(values.max()), *(x for _, x in ticks)]) * 1.45)
    ax.set_xlabel("seconds per 10k bars (lower is faster)")
    ax.set_title("Backtest throughput on the same bars")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return charts.png_bytes(fig)
