"""Replay a recorded live session through the decision core and compare, decision by decision.

Every cycle's inputs are in ``cycles.jsonl`` (written before the cycle decided) and every
decision in ``decisions.jsonl``.  ``replay_session`` rebuilds each cycle's ``MarketSnapshot``
exactly (``core.live.data.inputs_from_record``: features, chain slices, book with marks,
session facts) and calls ``strategies.decide.decide`` -- the function the backtest driver
(``core.backtest.driver.BacktestDriver.on_bar``) calls on every bar -- with the session's config,
then compares action, reason codes, reasons, structure, legs, quantity, position and exit
reason with what the live loop recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import AppConfig
from core.live.data import inputs_from_record
from core.live.loop import decision_id, decision_json
from strategies.decide import decide

COMPARED = ("decision_id", "action", "codes", "text", "position_id", "exit_reason", "structure", "qty", "legs",
            "limit")


@dataclass
class ReplayResult:
    cycles: int = 0
    decisions: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences and self.cycles > 0


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def replay_session(folder: Path, cfg: AppConfig) -> ReplayResult:
    folder = Path(folder)
    recorded: dict[str, list[dict[str, Any]]] = {}
    for d in _jsonl(folder / "decisions.jsonl"):
        recorded.setdefault(str(d.get("cycle_id")), []).append({k: d.get(k) for k in COMPARED})
    out = ReplayResult()
    for rec in _jsonl(folder / "cycles.jsonl"):
        inputs = inputs_from_record(rec)
        replayed = [{k: v for k, v in decision_json(inputs.ts, d, decision_id(inputs.ts, d)).items() if k in COMPARED}
                    for d in decide(inputs.snapshot(), cfg)]
        live = recorded.get(str(inputs.extra.get("cycle_id")), [])
        out.cycles += 1
        out.decisions += len(replayed)
        if replayed != live:
            out.differences.append(f"{rec['ts']}: live {live} != replay {replayed}")
    return out
