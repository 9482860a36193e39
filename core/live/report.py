"""The session report of a live session folder (``--mode report --run <folder>``).

Reads ``decisions.jsonl``, ``orders.jsonl`` and the ledger (SQLite in the folder) and writes
``session_report.json`` and ``session_report.md``: decisions by action and reason code, every
order walk (steps, status, fill credit, slippage against the mid at decision time), fills,
positions (open and closed, P&L), ledger events (reconciliations, kill switch, activities).
Slippage is ``fill credit - mid credit`` per share of one unit (negative = given up), also
in dollars (x 100 x units).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from core.live.ledger import Ledger, database_url


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_report(folder: Path, db: str | None = None) -> dict[str, Any]:
    folder = Path(folder)
    decisions = _jsonl(folder / "decisions.jsonl")
    orders = _jsonl(folder / "orders.jsonl")
    ledger = Ledger(database_url(folder, db)) if db or (folder / "ledger.sqlite").exists() else None
    walks = []
    slip_total = 0.0
    for o in orders:
        steps = o.get("orders") or []
        mid, fill = o.get("mid_credit"), o.get("fill_credit")
        filled_units = sum(int(s.get("filled_qty") or 0) for s in steps if isinstance(s, dict))
        slip = None
        if mid is not None and fill is not None and o.get("action") == "enter":
            slip = round(fill - mid, 4)
            slip_total += slip * 100 * max(filled_units, 1)
        walks.append({"ts": o.get("ts"), "decision_id": o.get("decision_id"), "action": o.get("action"),
                      "status": o.get("status"), "dry_run": o.get("dry_run"), "steps": len(steps),
                      "step_status": [s.get("status") for s in steps if isinstance(s, dict)],
                      "mid_credit": mid, "fill_credit": fill, "slippage_per_share": slip, "pnl": o.get("pnl")})
    report: dict[str, Any] = {
        "folder": str(folder),
        "decisions": {"total": len(decisions), "by_action": dict(Counter(d["action"] for d in decisions)),
                      "by_code": dict(Counter(c for d in decisions for c in d.get("codes", []))),
                      "blocked_by_kill_switch": sum(1 for d in decisions if d.get("allowed") is False)},
        "orders": walks,
        "slippage_dollars": round(slip_total, 2),
    }
    if ledger is not None:
        try:
            closed = ledger.positions("closed")
            report["fills"] = [{k: f[k] for k in ("cid", "qty", "credit", "ts")} for f in ledger.fills()]
            report["positions_open"] = [{"position_id": p["position_id"], "qty": p["qty"], "credit": p["credit"]}
                                        for p in ledger.positions("open")]
            report["positions_closed"] = [{"position_id": p["position_id"], "qty": p["qty"], "credit": p["credit"],
                                           "exit_debit": p["exit_debit"], "pnl": p["pnl"],
                                           "exit_reason": p["exit_reason"]} for p in closed]
            report["positions_other"] = [{"position_id": p["position_id"], "status": p["status"],
                                          "note": p["exit_reason"]} for p in ledger.positions(None)
                                         if p["status"] not in ("open", "closed")]
            report["realized_pnl"] = round(sum(float(p["pnl"] or 0.0) for p in closed), 2)
            report["broker_orders"] = len(ledger.orders())
            report["events"] = [{"ts": ts, "kind": kind, "text": text} for ts, kind, text in ledger.events()]
            raw = ledger.get("killswitch")
            report["kill_switch"] = json.loads(raw) if raw else {"state": "ACTIVE"}
        finally:
            ledger.close()
    return report


def render_markdown(r: dict[str, Any]) -> str:
    lines = [f"# Live session report: {r['folder']}", ""]
    d = r["decisions"]
    lines += ["## Decisions", f"{d['total']} decisions; by action: " + ", ".join(f"{k} {v}" for k, v in
                                                                              sorted(d["by_action"].items())),
              "by reason code: " + ", ".join(f"{k} {v}" for k, v in sorted(d["by_code"].items())),
              f"blocked by the kill switch: {d['blocked_by_kill_switch']}", ""]
    lines += ["## Orders", "| time | decision | status | steps | mid | fill | slippage/share | P&L |",
              "|---|---|---|---|---|---|---|---|"]
    for o in r["orders"]:
        def f(x: Any) -> str:
            return "" if x is None else (f"{x:.2f}" if isinstance(x, int | float) else str(x))
        lines.append(f"| {o['ts']} | {o['decision_id']} | {o['status']}{' (dry run)' if o['dry_run'] else ''} | "
                     f"{o['steps']} | {f(o['mid_credit'])} | {f(o['fill_credit'])} | {f(o['slippage_per_share'])} | "
                     f"{f(o['pnl'])} |")
    lines += ["", f"Slippage against mid on entries: ${r['slippage_dollars']:,.2f}"]
    if "realized_pnl" in r:
        lines += ["", "## Positions", f"open {len(r['positions_open'])}, closed {len(r['positions_closed'])}, "
                                      f"realized P&L ${r['realized_pnl']:,.2f}"]
        for p in r["positions_closed"]:
            lines.append(f"- {p['position_id']} x{p['qty']}: credit {p['credit']:.2f}, exit {p['exit_debit']:.2f}, "
                         f"P&L ${p['pnl']:,.2f} ({p['exit_reason']})")
        for p in r["positions_other"]:
            lines.append(f"- {p['position_id']}: {p['status']} ({p['note']})")
        lines += ["", f"## Kill switch: {r['kill_switch'].get('state')} {r['kill_switch'].get('reason', '')}", "",
                  "## Ledger events"]
        lines += [f"- {e['ts']} {e['kind']}: {e['text']}" for e in r["events"][-50:]]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(folder: Path, db: str | None = None) -> Path:
    r = build_report(folder, db)
    _write(Path(folder) / "session_report.json", json.dumps(r, indent=2, default=str))
    out = Path(folder) / "session_report.md"
    _write(out, render_markdown(r))
    return out
