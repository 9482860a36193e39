"""What a backtest writes down as it goes: per-bar equity and Greeks, structured decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from core.broker.protocol import VenueEvent
from core.dto import Action, DecisionRecord, ExitReason, ReasonCode, TradeDecision


@dataclass(slots=True)
class BarRecord:
    """Per-bar arrays (equity.csv, greeks.csv)."""

    n: int
    cash: np.ndarray = field(init=False)
    positions_value: np.ndarray = field(init=False)
    equity: np.ndarray = field(init=False)
    open_positions: np.ndarray = field(init=False)
    greeks: np.ndarray = field(init=False)  # delta, gamma, vega, theta

    def __post_init__(self) -> None:
        self.cash = np.full(self.n, np.nan)
        self.positions_value = np.full(self.n, np.nan)
        self.equity = np.full(self.n, np.nan)
        self.open_positions = np.zeros(self.n, dtype=np.int32)
        self.greeks = np.zeros((self.n, 4))


class Recorder:
    def __init__(self, n: int) -> None:
        self.rec = BarRecord(n)
        self.records: list[DecisionRecord] = []

    def decision(self, ts: dt.datetime, d: TradeDecision, text: str | None = None, position_id: str = "") -> None:
        self.records.append(DecisionRecord(ts, d.action, d.codes, text or "; ".join(d.reasons),
                                           position_id or d.position_id, d.exit_reason, dict(d.scores)))

    def event(self, e: VenueEvent) -> None:
        reason = e.trade.exit_reason if e.trade is not None else None
        self.records.append(DecisionRecord(e.ts, Action.EXIT, (e.code,), e.text, e.position_id, reason))

    def end_of_data(self, ts: dt.datetime, pid: str, text: str, code_reason: ExitReason) -> None:
        self.records.append(DecisionRecord(ts, Action.EXIT, (ReasonCode.END_OF_DATA,), text, pid, code_reason))

    @property
    def lines(self) -> list[str]:
        """``decisions.log``: the readable rendering of the structured rows."""
        return [r.render() for r in self.records]
