"""Stress report files and console tables: the long CSV, the JSON, the PDF and rich tables."""

from __future__ import annotations

import json
import math
import sys
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


def write_report(payload: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``stress_report.csv`` and ``.json`` into a temporary folder, then rename it to ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        long_table(payload).to_csv(tmp / "stress_report.csv", index=False)
        (tmp / "stress_report.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        from core.outputs.report_extra import build_stress_report

        build_stress_report(tmp)
    return out_dir


def _table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]):
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


SCENARIO_COLUMNS = ("scenario", "spot_new", "pnl_full", "pnl_approx", "approx_error", "pnl_delta", "pnl_gamma",
                    "pnl_vega", "pnl_from_entry", "max_loss_bound")
REPLAY_COLUMNS = ("window", "start", "end", "net_profit", "max_drawdown", "max_drawdown_pct", "trades", "win_rate",
                  "worst_trade", "vix_min", "vix_max", "vix_proxy", "intraday_synthetic", "status")
SENSITIVITY_COLUMNS = ("parameter", "direction", "value", "net_profit", "net_profit_change", "max_drawdown",
                       "max_drawdown_pct", "trades", "win_rate", "worst_trade", "status")


def print_report(payload: Mapping[str, Any], console=None) -> None:
    """Rich tables of the portfolio, scenarios, historical windows and sensitivity."""
    from rich.console import Console

    console = console or Console(width=None if sys.stdout.isatty() else 200)
    port = payload["portfolio"]
    console.print(_table(f"Portfolio ({port['kind']}) at {port['timestamp']}, spot {port['spot']:.2f}, "
                         f"ATM IV {port['atm_iv']:.4f}", port["positions"],
                         ("position_id", "expiry", "contracts", "long_put", "short_put", "short_call", "long_call",
                          "credit", "max_loss_bound")))
    console.print(_table("Scenario revaluation (full BSM vs delta-gamma-vega, $)", payload["scenarios"],
                         SCENARIO_COLUMNS))
    if payload["historical"]:
        console.print(_table("Historical stress windows", payload["historical"], REPLAY_COLUMNS))
    if payload["sensitivity"]:
        console.print(_table("Parameter sensitivity (one grid step around the config)", payload["sensitivity"],
                             SENSITIVITY_COLUMNS))
    flags = payload["data_flags"]
    if flags.get("intraday_synthetic"):
        console.print("[yellow]note:[/yellow] intraday bars are synthesised from real daily OHLCV")
    if flags.get("vix_proxy_until"):
        console.print(f"[yellow]note:[/yellow] VIX is a GARCH proxy up to {flags['vix_proxy_until']}")
    if flags.get("chains_modelled"):
        console.print("[yellow]note:[/yellow] option chains are modelled, not observed quotes")
    console.print(f"outputs: {payload['out_dir']}")


