"""The selector beside the plain iron condor: two backtests of the same range, one PDF page.

``python scripts/selector_comparison.py [--bt-start D] [--bt-end D] [--out DIR]`` runs the default
configuration and the same configuration with ``strategy.use_selector``, and writes
``comparison.pdf`` (return, max drawdown, Sharpe, trades per structure for both) and
``comparison.json`` into DIR under the one output-folder rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from reportlab.platypus import Spacer

from core.backtest.run import run_backtest
from core.config import AppConfig
from core.outputs.atomic import atomic_dir, check_target
from core.outputs.backtest import metrics_of, trades_frame
from core.outputs.pdf import H1, _p, _table, write_pdf

KEYS = (("net_profit", "net P&L ($)", "{:,.2f}"), ("total_return", "return", "{:.2%}"),
        ("max_drawdown", "max drawdown ($)", "{:,.2f}"), ("max_drawdown_pct", "max drawdown", "{:.2%}"),
        ("sharpe", "Sharpe", "{:.2f}"), ("trades", "trades", "{:.0f}"), ("win_rate", "win rate", "{:.1%}"))


def _summary(cfg: AppConfig) -> dict[str, Any]:
    res = run_backtest(cfg)
    trades = trades_frame(res.driver.broker.closed)
    metrics = metrics_of(res, trades)
    by_structure: dict[str, dict[str, float]] = {}
    if len(trades):
        for name, grp in trades.groupby("structure"):
            by_structure[str(name)] = {"trades": float(len(grp)), "pnl": float(grp["pnl"].sum())}
    return {"metrics": {k: metrics.get(k) for k, _, _ in KEYS}, "by_structure": by_structure,
            "range": [res.inputs.start.isoformat(), res.inputs.end.isoformat()]}


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None or (isinstance(value, float) and pd.isna(value)) else pattern.format(value)


def compare(cfg: AppConfig, out_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """Run both backtests and write the page; returns the figures."""
    import json

    folder = Path(out_dir)
    check_target(folder, force)
    plain = _summary(cfg.with_overrides({"strategy.use_selector": False, "run.progress": False}))
    selector = _summary(cfg.with_overrides({"strategy.use_selector": True, "run.progress": False}))
    rows: list[list[Any]] = [["", "plain iron condor", "regime selector"]]
    for key, label, pattern in KEYS:
        rows.append([label, _fmt(plain["metrics"][key], pattern), _fmt(selector["metrics"][key], pattern)])
    names = sorted(set(plain["by_structure"]) | set(selector["by_structure"]))
    struct_rows: list[list[Any]] = [["structure", "plain: trades / P&L", "selector: trades / P&L"]]
    for n in names:
        cells = [f"{int(r['trades'])} / {r['pnl']:,.2f}" if (r := side["by_structure"].get(n)) else "-"
                 for side in (plain, selector)]
        struct_rows.append([n, *cells])
    first, last = plain["range"]
    story = [_p(f"Regime selector beside the plain iron condor, {first} to {last}", H1),
             _p(f"Same data and settings ({cfg.data.source} data, ${cfg.backtest.cash:,.0f}); the only difference is "
                "strategy.use_selector. Figures from the engine's metrics (metrics.json)."),
             Spacer(1, 6), _table(rows, [160, 130, 130]), Spacer(1, 10),
             _p("Trades and P&L per structure"), Spacer(1, 4), _table(struct_rows, [160, 130, 130])]
    payload = {"plain": plain, "selector": selector}
    with atomic_dir(folder, force=force) as tmp:
        write_pdf(story, tmp / "comparison.pdf", "Selector comparison", f"{first}..{last}")
        (tmp / "comparison.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return payload
