"""Stress report files and console tables: the long CSV, the JSON, the PDF and rich tables."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.outputs.atomic import atomic_dir


def _clean(value: Any) -> Any:
    """JSON-safe value: numpy scalars to Python, NaN/inf to None, containers recursively."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def long_table(payload: Mapping[str, Any]) -> pd.DataFrame:
    """Every number of the report as (section, name, metric, value) rows."""
    rows: list[tuple[str, str, str, Any]] = []
    port = payload["portfolio"]
    rows += [("portfolio", port["kind"], k, v) for k, v in port.items() if k != "positions"]
    for pos in port["positions"]:
        rows += [("portfolio", pos["position_id"], k, v) for k, v in pos.items() if k != "position_id"]
    for row in payload["scenarios"]:
        rows += [("scenarios", row["scenario"], k, v) for k, v in row.items() if k != "scenario"]
    for row in payload["historical"]:
        rows += [("historical", row["window"], k, v) for k, v in row.items() if k != "window"]
    for row in payload["sensitivity"]:
        name = f"{row['parameter']}:{row['direction']}"
        rows += [("sensitivity", name, k, v) for k, v in row.items() if k not in ("parameter", "direction")]
    rows += [("data_flags", "data", k, v) for k, v in payload["data_flags"].items()]
    return pd.DataFrame(rows, columns=["section", "name", "metric", "value"])


def write_report(payload: Mapping[str, Any], out_dir: Path, force: bool = False) -> Path:
    """Write ``stress_report.csv`` and ``.json`` into a temporary folder, then rename it to ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, force=force) as tmp:
        long_table(payload).to_csv(tmp / "stress_report.csv", index=False)
        (tmp / "stress_report.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        from core.outputs.report_extra import build_stress_report

        build_stress_report(tmp)
    return out_dir


def _table(title: str, rows: Sequence[Sequence[str]], columns: Sequence[str]):
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def _usd(value: Any) -> str:
    """Whole dollars with the sign in front: ``-$1,568``; ``-`` when absent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    v = round(float(value)) + 0
    return f"-${abs(v):,}" if v < 0 else f"${v:,}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{round(float(value) * 100, 1) + 0.0:.1f}%"


def _tag(status: Any) -> str:
    text = str(status or "")
    return "ok" if text == "ok" else "NO TRADES" if text.startswith("no trades") else "skipped"


def _portfolio_rows(port: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for p in port["positions"]:
        strikes = "/".join(f"{p[k]:g}" for k in ("long_put", "short_put", "short_call", "long_call")
                           if isinstance(p.get(k), int | float) and math.isfinite(p[k]))
        rows.append([str(p["position_id"]), str(p["expiry"]), str(p["contracts"]), strikes,
                     f"{p['credit']:.2f}", _usd(p["max_loss_bound"])])
    return rows


def _scenario_rows(scenarios: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [[str(s["scenario"]), _fmt(s.get("spot_new")), _usd(s.get("pnl_full")), _usd(s.get("pnl_approx")),
             _usd(s.get("approx_error")), _usd(s.get("pnl_from_entry")), _fmt(s.get("within_bound"))]
            for s in scenarios]


def _replay_rows(windows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for w in windows:
        vix = "-" if w.get("vix_min") is None else f"{w['vix_min']:.0f}-{w['vix_max']:.0f}"
        rows.append([str(w["window"]), _usd(w.get("net_profit")),
                     _pct(w.get("max_drawdown_pct")), _fmt(w.get("trades")), _pct(w.get("win_rate")),
                     _usd(w.get("worst_trade")), vix + (" PROXY" if w.get("vix_proxy") else ""), _tag(w.get("status"))])
    return rows


def _sensitivity_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    out = []
    for r in rows:
        step = "base (the config)" if r["parameter"] == "base" else \
            f"{str(r['parameter']).split('.')[-1]} {r.get('base_value'):g}->{r.get('value'):g}"
        change = "-" if r.get("net_profit_change") is None else _usd(r["net_profit_change"])
        out.append([step, _usd(r.get("net_profit")), change, _pct(r.get("max_drawdown_pct")),
                    _fmt(r.get("trades")), _tag(r.get("status"))])
    return out


def print_report(payload: Mapping[str, Any], console=None) -> None:
    """Compact rich tables (they fit the terminal) of the portfolio, scenarios, historical windows
    and sensitivity; the reason of every row that is not ``ok`` follows its table."""
    from rich.console import Console

    console = console or Console()
    port = payload["portfolio"]
    console.print(_table(f"Portfolio ({port['kind'].replace('_', ' ')}) at {new_york(port['timestamp'])}\n"
                         f"spot {port['spot']:.2f}, ATM IV {port['atm_iv']:.4f}", _portfolio_rows(port),
                         ("position", "expiry", "qty", "strikes P/P/C/C", "credit", "max loss")))
    console.print(_table("Scenarios: P&L of the book, full BSM vs delta-gamma-vega ($)",
                         _scenario_rows(payload["scenarios"]),
                         ("scenario", "spot", "full", "approx", "error", "from entry", "in bound")))
    if payload["historical"]:
        console.print(_table("Historical stress windows", _replay_rows(payload["historical"]),
                             ("window", "net", "max DD", "trades", "win", "worst", "VIX", "status")))
        _notes(console, [(str(w["window"]), w.get("status")) for w in payload["historical"]])
    if payload["sensitivity"]:
        console.print(_table("Sensitivity: one step around the config; change = net minus the base run's",
                             _sensitivity_rows(payload["sensitivity"]),
                             ("parameter step", "net", "change", "max DD", "trades", "status")))
        _notes(console, [(f"{r['parameter']} {r['direction']}", r.get("status")) for r in payload["sensitivity"]])
    flags = payload["data_flags"]
    if flags.get("intraday_synthetic"):
        console.print("note: intraday bars are synthesised from real daily OHLCV", highlight=False)
    if flags.get("vix_note"):
        console.print(f"note: {flags['vix_note']}", highlight=False)
    elif flags.get("vix_proxy_until"):
        console.print(f"note: VIX is a proxy up to {flags['vix_proxy_until']}", highlight=False)
    if flags.get("chains_modelled"):
        console.print("note: option chains are modelled, not observed quotes", highlight=False)
    pdf = Path(payload["out_dir"]) / "stress_report.pdf"
    console.print(f"report: {pdf if pdf.is_file() else payload['out_dir']}", highlight=False, soft_wrap=True)


def new_york(timestamp: Any) -> str:
    """An output-file timestamp (UTC) as New York wall-clock text for people."""
    return pd.Timestamp(timestamp).tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M New York")


def _notes(console, rows: Sequence[tuple[str, Any]]) -> None:
    for name, status in rows:
        if status not in (None, "ok"):
            console.print(f"  {name}: {' '.join(str(status).split())}", highlight=False)
