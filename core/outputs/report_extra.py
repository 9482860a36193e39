"""PDF reports of a stress run and of the benchmark, rebuilt from their saved JSON alone.

``build_stress_report`` turns ``stress_report.json`` (``core.stress.run``) into ``stress_report.pdf``
beside it; ``build_benchmark_report`` turns ``benchmark.json`` into a one-page ``benchmark.pdf``.
Styles, tables, chart scaling and the outlined document come from ``core.outputs.pdf``, PNG
rendering from ``core.outputs.charts``.  The text is a deterministic function of the JSON (dollars via
``format_usd`` rounded to cents) and each PDF is written under a temporary name, then renamed.

The scenario chart sets the full revaluation ``dV = V(S1, sigma1, tau1) - V(S0, sigma0, tau0)``
beside the delta-gamma-vega(-theta) approximation of ``risk.scenarios``.  The defined-risk bound
holds on the P&L from entry, ``V1 - V_entry >= -B``; on the chart's axis (P&L from today's marks
``V0``) it is the floor ``dV >= -B - (V0 - V_entry)``.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.platypus import Flowable, KeepInFrame, KeepTogether, Spacer, Table, TableStyle

from core.dto import DataError
from core.outputs import charts
from core.outputs.pdf import BOTTOM_MARGIN, FRAME_WIDTH, H1, MARGIN, SMALL, TITLE, _chart, _p, _table, write_pdf
from core.outputs.report_data import format_usd

STRESS_JSON = "stress_report.json"
STRESS_PDF = "stress_report.pdf"
STRESS_KEYS = ("run", "portfolio", "scenarios", "historical", "sensitivity", "data_flags")
STRESS_SECTIONS = ("Stress identity", "Scenario revaluation", "Historical windows", "Parameter sensitivity")
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
    """``format_usd`` of the value rounded to cents (so -0.001 and -0.0 read ``$0.00``); ``n/a`` for None."""
    return "n/a" if value is None else format_usd(round(float(value), 2) + 0.0)


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
    ax.set_xticks(pos, [textwrap.fill(n.replace("_", " "), 12) for n in names])
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
        label: str | None = f"one step {direction}"
        for i, name in enumerate(names):
            row = params[name].get(direction, {})
            change = row.get("net_profit_change")
            if change is None:  # skipped, or a run without trades: never drawn as a gain or a loss
                what = "no trades" if str(row.get("status", "")).startswith("no trades") else "skipped"
                ax.text(0.0, i + offset, f" {direction}: {what}", va="center", fontsize=6, color=charts.GREY,
                        style="italic")
                continue
            ax.barh(i + offset, change, 0.38, color=color, label=label)
            label = None
            ax.text(change, i + offset, f" {row.get('value'):g} ", va="center", fontsize=6,
                    ha="left" if change >= 0 else "right")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.6)  # top to bottom, room for the "skipped" notes
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
    ticks = [(i, x) for i, x in enumerate(target_x) if x is not None]
    for k, (i, x) in enumerate(ticks):
        ax.plot([x, x], [i - 0.4, i + 0.4], color=charts.RED, lw=1.5, label="target (x plain)" if k == 0 else None)
    if plain is not None:
        ax.axvline(plain, color="black", ls="--", lw=0.8, label="plain Backtrader")
    for i, w in enumerate(rows):  # label right of the bar, the plain line and the target tick
        x = max(values[i], plain or 0.0, target_x[i] or 0.0)
        ax.text(x, i, f"  {values[i]:.3f} s ({float(w['ratio_vs_plain']):.2f}x plain)", va="center", fontsize=7)
    ax.set_yticks(pos, [str(w["workload"]) for w in rows])
    ax.invert_yaxis()
    ax.set_xlim(0.0, max([float(values.max()), *(x for _, x in ticks)]) * 1.6)
    ax.set_xlabel("seconds per 10k bars (lower is faster)")
    ax.set_title("Backtest throughput on the same bars")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.38), ncol=2, frameon=False)
    fig.tight_layout()
    return charts.png_bytes(fig)


# --------------------------------------------------------------------------- stress sections


def _vix_text(flags: Mapping[str, Any], as_of: str) -> str:
    """Whether the VIX on the portfolio date is the modelled proxy (ISO dates compare as text)."""
    until = flags.get("vix_proxy_until")
    if not until:
        return "real VIX throughout"
    if as_of <= str(until):
        return f"PROXY: VIX on the portfolio date {as_of} is the modelled (GARCH) proxy, used up to {until}"
    return (f"real VIX on the portfolio date {as_of} (the source uses a modelled proxy up to {until}; "
            "historical windows before that are flagged PROXY)")


def _new_york(timestamp: Any) -> str:
    """The payload's UTC timestamp as New York time for the reader ('?' when absent)."""
    if not timestamp:
        return "?"
    return pd.Timestamp(timestamp).tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M New York")


PORTFOLIO_KINDS = {"open_positions": "positions the configured backtest holds at the close",
                   "standard_condor": "standard 16-delta iron condor at the close"}


def _identity(payload: Mapping[str, Any]) -> list[Flowable]:
    """Portfolio description, data flags, config hash, seed, code revision and the positions held."""
    run, port, flags = payload["run"], payload["portfolio"], payload["data_flags"]
    kind = PORTFOLIO_KINDS.get(port.get("kind"), str(port.get("kind")))
    rows = [
        ("Portfolio", f"{kind} of {port.get('as_of', '?')} ({len(port.get('positions', []))} position(s))"),
        ("Market at marks", f"{_new_york(port.get('timestamp'))}: spot {fmt_num(port.get('spot'))}, ATM IV "
                            f"{fmt_num(port.get('atm_iv'), 4)}, rate {fmt_num(port.get('rate'), 4)}, dividend yield "
                            f"{fmt_num(port.get('dividend_yield'), 4)}"),
        ("Entry value", f"{fmt_usd(port.get('entry_value'))} (minus the credits received); max-loss bound "
                        f"{fmt_usd(port.get('max_loss_bound'))} = sum (widest wing - credit) x 100 x contracts"),
        ("Data source", f"{flags.get('source', '?')} ({run.get('data', {}).get('underlying', 'SPY')})"),
        ("VIX", _vix_text(flags, str(port.get("as_of", "")))),
        ("Intraday bars", "SYNTHESISED from real daily OHLCV (not observed intraday prices)"
         if flags.get("intraday_synthetic") else "observed intraday bars"),
        ("Option chains", "MODELLED from a volatility surface (not observed quotes)"
         if flags.get("chains_modelled") else "observed quotes"),
        ("Config hash", str(run.get("config_hash", "?"))), ("Seed", str(run.get("seed", "?"))),
        ("Code revision", str(run.get("code_revision", "?"))),
    ]
    head = ["position", "expiry", "qty", "long put", "short put", "short call", "long call", "credit", "max loss"]
    pos_rows: list[list[Any]] = [head]
    for p in port.get("positions", []):
        pos_rows.append([p.get("position_id", "?"), p.get("expiry", "?"), p.get("contracts", "?"),
                         *(fmt_num(p.get(k)) for k in ("long_put", "short_put", "short_call", "long_call")),
                         fmt_num(p.get("credit"), 3), fmt_usd(p.get("max_loss_bound"))])
    notes = [_p(f"- {n}", SMALL) for n in run.get("data", {}).get("notes", [])]
    return [_p("Quantor-MTFuzz stress report", TITLE), _p("Stress identity", H1), _key_value_table(rows),
            Spacer(1, 6), _table(pos_rows, [80, 58, 28, 52, 52, 56, 52, 44, 60], font=7.5, left=(0, 1)),
            _p("Strikes in $; credit in $ per share; max loss in $ for the position (the bound above).", SMALL),
            *([Spacer(1, 3), _p("Data notes:", SMALL), *notes] if notes else [])]


SCENARIO_HEAD = ["scenario", "spot\nafter", "full\nreval.", "approx.", "error", "delta\nterm", "gamma\nterm",
                 "vega\nterm", "theta\nterm", "P&L from\nentry", "within\nbound"]
SCENARIO_WIDTHS = [78, 40, 50, 50, 46, 46, 46, 46, 40, 50, 31]


def scenario_rows(scenarios: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Table rows of the scenarios: spot to 2 decimals, every P&L through ``format_usd``."""
    rows = []
    for s in scenarios:
        rows.append([str(s.get("scenario")), fmt_num(s.get("spot_new")),
                     *(fmt_usd(s.get(k)) for k in ("pnl_full", "pnl_approx", "approx_error", "pnl_delta", "pnl_gamma",
                                                   "pnl_vega", "pnl_theta", "pnl_from_entry")),
                     fmt_num(s.get("within_bound"))])
    return rows


def _scenarios(payload: Mapping[str, Any]) -> list[Flowable]:
    port, scenarios = payload["portfolio"], payload["scenarios"]
    head = _p("Scenario revaluation", H1)
    if not scenarios:
        return [head, _p("No scenarios were revalued in this stress run.")]
    bound, entry = port.get("max_loss_bound") or 0.0, port.get("entry_value") or 0.0
    value_now = scenarios[0].get("value", entry)
    floor = -bound - (value_now - entry)
    breaches = [str(s["scenario"]) for s in scenarios if s.get("within_bound") is False]
    verdict = (f"Every scenario stays within the max-loss bound of {fmt_usd(bound)} from entry." if not breaches
               else f"BOUND BREACHED in: {', '.join(breaches)} (check the chain marks).")
    note = (f"Dollars for the whole book. Full revaluation: BSM at the shocked spot and IVs minus today's value "
            f"{fmt_usd(value_now)}; approximation: delta + gamma + vega + theta terms at today's Greeks; error = "
            f"approximation - full. P&L from entry is measured from the entry value {fmt_usd(entry)}; on the chart "
            f"(P&L from today's marks) the bound sits at {fmt_usd(floor)}. {verdict}")
    table = _table([SCENARIO_HEAD, *scenario_rows(scenarios)], SCENARIO_WIDTHS, font=7)
    return [head, KeepTogether([_chart(scenario_png(scenarios, floor), "No scenario to chart."), _p(note, SMALL)]),
            Spacer(1, 4), KeepTogether([table])]  # a short table: never split over pages


REPLAY_HEAD = ["window", "start", "end", "net profit", "max DD", "max DD\n%", "trades", "win\nrate", "worst\ntrade",
               "VIX\nmin-max", "VIX\nsource"]
REPLAY_WIDTHS = [62, 50, 50, 52, 52, 38, 30, 38, 48, 58, 40]


def _historical(payload: Mapping[str, Any]) -> list[Flowable]:
    head = _p("Historical windows", H1)
    windows = payload["historical"]
    if not windows:
        return [head, _p("No historical windows were replayed in this stress run.")]
    rows: list[list[Any]] = [REPLAY_HEAD]
    skipped = []
    for w in windows:
        if w.get("status") != "ok":
            skipped.append(len(rows))
            rows.append([w.get("window", "?"), w.get("start", "?"), w.get("end", "?"),
                         _p(str(w.get("status", "skipped")), SMALL), *[""] * 7])
            continue
        vix = f"{fmt_num(w.get('vix_min'), 1)}-{fmt_num(w.get('vix_max'), 1)}"
        rows.append([w.get("window"), w.get("start"), w.get("end"), fmt_usd(w.get("net_profit")),
                     fmt_usd(w.get("max_drawdown")), fmt_pct(w.get("max_drawdown_pct")), fmt_num(w.get("trades"), 0),
                     fmt_pct(w.get("win_rate")), fmt_usd(w.get("worst_trade")), vix,
                     "PROXY" if w.get("vix_proxy") else "real"])
    synthetic = any(w.get("intraday_synthetic") for w in windows)
    note = ("One backtest of the configured strategy per window. VIX = PROXY: the window's VIX is (partly) the "
            "modelled GARCH proxy, not observed. " + ("Intraday bars are synthesised from daily OHLCV in every "
                                                       "window." if synthetic else ""))
    return [head, _span_skipped(_table(rows, REPLAY_WIDTHS, font=7, left=(0, 1, 2)), skipped, 3), Spacer(1, 3),
            _p(note, SMALL)]


SENS_HEAD = ["parameter", "step", "value", "net profit", "change", "max DD", "max DD\n%", "trades", "win\nrate",
             "worst\ntrade"]
SENS_WIDTHS = [104, 32, 56, 54, 54, 54, 40, 32, 40, 52]


def _sens_value(r: Mapping[str, Any]) -> str:
    if r.get("parameter") == "base":
        return "config"
    base, value = r.get("base_value"), r.get("value")
    return f"{base:g} -> {value:g}" if base is not None and value is not None else str(value)


def _sensitivity(payload: Mapping[str, Any]) -> list[Flowable]:
    head = _p("Parameter sensitivity", H1)
    sens = payload["sensitivity"]
    if not sens:
        return [head, _p("Sensitivity runs were not part of this stress run.")]
    rows: list[list[Any]] = [SENS_HEAD]
    skipped = []
    for r in sens:
        start = [r.get("parameter", "?"), r.get("direction", "?"), _sens_value(r)]
        if r.get("status") != "ok":
            skipped.append(len(rows))
            rows.append([*start, _p(str(r.get("status", "skipped")), SMALL), *[""] * 6])
            continue
        change = "-" if r.get("parameter") == "base" else fmt_usd(r.get("net_profit_change"))
        rows.append([*start, fmt_usd(r.get("net_profit")), change, fmt_usd(r.get("max_drawdown")),
                     fmt_pct(r.get("max_drawdown_pct")), fmt_num(r.get("trades"), 0), fmt_pct(r.get("win_rate")),
                     fmt_usd(r.get("worst_trade"))])
    base: Mapping[str, Any] = next((r for r in sens if r.get("parameter") == "base"), {})
    note = (f"Each parameter one grid step down and up around the config (clamped into its allowed range), all "
            f"else fixed, on {base.get('start', '?')} to {base.get('end', '?')}; change = net profit minus the base "
            "run's. A value the config rejects is skipped with its reason; a run without trades is marked so and "
            "has no change (standing aside is not a gain).")
    chart = _chart(tornado_png(sens), "No sensitivity run completed, so there is no change to chart.")
    return [head, KeepTogether([chart, _p(note, SMALL)]), Spacer(1, 4),
            _span_skipped(_table(rows, SENS_WIDTHS, font=7, left=(0, 1, 2)), skipped, 3)]


STRESS_BUILDERS: tuple[Callable[[Mapping[str, Any]], list[Flowable]], ...] = (_identity, _scenarios, _historical,
                                                                              _sensitivity)


def build_stress_report(stress_dir: Path | str) -> Path:
    """Write ``<stress_dir>/stress_report.pdf`` from its ``stress_report.json``; returns the PDF path."""
    folder = Path(stress_dir)
    payload = load_stress(folder)
    story: list[Flowable] = []
    for section in STRESS_BUILDERS:
        story += section(payload)
    port = payload["portfolio"]
    label = f"stress {port.get('as_of', '?')} {payload['run'].get('config_hash', '')}".strip()
    return write_pdf(story, folder / STRESS_PDF, f"Stress report {port.get('as_of', '')}", label)


# --------------------------------------------------------------------------- benchmark


BENCH_HEAD = ["workload", "seconds", "s / 10k\nbars", "bars / s", "x plain", "figure", "target", "met"]
BENCH_WIDTHS = [146, 40, 42, 44, 36, 113, 70, 32]


def benchmark_rows(workloads: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Table rows: seconds to 3 decimals, s / 10k bars to 4, bars / s to 0, ratio to 3; blank when absent."""
    def num(w: Mapping[str, Any], key: str, digits: int) -> str:
        return "" if w.get(key) is None else fmt_num(float(w[key]), digits)

    def met(w: Mapping[str, Any]) -> str:
        flag = w.get("target_met")
        return "" if flag is None else "yes" if flag else "MISSED"

    return [[_p(str(w.get("workload", "?")), SMALL), num(w, "seconds", 3), num(w, "seconds_per_10k_bars", 4),
             num(w, "bars_per_second", 0), num(w, "ratio_vs_plain", 3), _p(str(w.get("figure", "")), SMALL),
             _p(str(w.get("target", "")), SMALL), met(w)] for w in workloads]


def _missed_in_red(table: Table, workloads: Sequence[Mapping[str, Any]]) -> Table:
    rows = [i + 1 for i, w in enumerate(workloads) if w.get("target_met") is False]
    table.setStyle(TableStyle([cmd for r in rows for cmd in (("TEXTCOLOR", (-1, r), (-1, r), colors.red),
                                                              ("FONT", (-1, r), (-1, r), "Helvetica-Bold", 7))]))
    return table


def load_benchmark(path: Path) -> dict[str, Any]:
    """``benchmark.json`` with a list of workloads, each naming its workload; DataError otherwise."""
    remedy = "rerun `python core/main.py --mode benchmark` to rewrite it"
    data = _read_json(path, "benchmark result", remedy)
    workloads = data.get("workloads")
    if not isinstance(workloads, list) or not all(isinstance(w, dict) and "workload" in w for w in workloads):
        raise DataError(f"{path} lacks a 'workloads' list of {{'workload': ...}} rows: {remedy}")
    return data


def build_benchmark_report(benchmark_json: Path | str, out_pdf: Path | str | None = None) -> Path:
    """Write a one-page PDF of ``benchmark.json`` (default ``benchmark.pdf`` beside it); returns its path.

    The page is shrunk to fit when the workload table is long, so it is always one page."""
    path = Path(benchmark_json)
    data = load_benchmark(path)
    machine = data.get("machine", {})
    facts = (f"Python {machine.get('python', '?')} on {machine.get('processor', '?')}; peak memory "
             f"{fmt_num(data.get('peak_memory_mib_after_backtests'), 1)} MiB after the backtests, "
             f"{fmt_num(data.get('peak_memory_mib'), 1)} MiB in all (resident set).")
    if machine.get("load_average_before") is not None:
        threads = ", ".join(f"{k} {v}" for k, v in (machine.get("threads") or {}).items() if v is not None)
        facts += (f" Load average {machine.get('load_average_before')} before, {machine.get('load_average_after')} "
                  f"after, {machine.get('cpu_count', '?')} CPUs; threads: {threads or 'n/a'}.")
    if machine.get("busy"):
        facts += " WARNING: the machine was busy during the run; timings are slower than on an idle machine."
    missed = data.get("missed_targets") or []
    if missed:
        facts += f" MISSED targets: {'; '.join(map(str, missed))}."
    note = ("Backtest workloads run on the same bars and are timed against plain Backtrader (SMA(20) + RSI(14)) in "
            "the same process: the ratio 'x plain' survives a slower machine, absolute seconds do not. 'figure' "
            "gives the throughput of workloads not measured in bars. Targets are the performance budget.")
    chart = _chart(benchmark_png(data["workloads"]), "No backtest workload with a ratio to plain Backtrader.")
    content = [_p("Quantor-MTFuzz benchmark", TITLE), _p(facts), Spacer(1, 4), chart, Spacer(1, 6),
               _missed_in_red(_table([BENCH_HEAD, *benchmark_rows(data["workloads"])], BENCH_WIDTHS, font=7,
                                     left=(0, 5, 6)), data["workloads"]),
               Spacer(1, 4), _p(note, SMALL)]
    frame_height = A4[1] - MARGIN - BOTTOM_MARGIN - 12  # the frame's own padding
    story: list[Flowable] = [KeepInFrame(FRAME_WIDTH, frame_height, content, mode="shrink")]
    target = Path(out_pdf) if out_pdf is not None else path.with_suffix(".pdf")
    return write_pdf(story, target, "Quantor-MTFuzz benchmark", path.name)
