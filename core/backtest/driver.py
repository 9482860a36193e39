"""The backtest driver — a thin loop: clock → snapshot → decide → broker → record.

Backtrader owns the clock (``core/backtest/engine.py`` calls ``on_bar(i)`` once per base bar).
Per bar the driver marks open positions, hands the venue its market, builds the snapshot,
calls ``strategies.decide`` and turns each decision into an order or a share trade; the venue
(``core.broker.sim``) fills, settles expiries and assigns on its own.  No trading rule lives
here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.backtest.recorder import BarRecord, Recorder
from core.backtest.snapshot import SnapshotBuilder, SourceChainView
from core.broker.protocol import ClosedTrade, OrderRequest, OrderStatus
from core.broker.sim import SimBroker
from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    Action,
    Book,
    BookPosition,
    ExitReason,
    FeatureSet,
    LegMarks,
    OptionRight,
    OrderIntent,
    Position,
    ReasonCode,
    TradeDecision,
)
from data_factory.base import ChainSource
from strategies.decide import decide


class Marker:
    """Marks of open positions per bar: a whole remaining-life path in one vectorised call at
    entry when the source offers ``marks_path``, else all legs of all positions in one call."""

    def __init__(self, chains: ChainSource, index: pd.DatetimeIndex, dates: np.ndarray) -> None:
        self.chains = chains
        self.index = index
        self._date_ord = np.array([d.toordinal() for d in dates], dtype=np.int64)
        self.paths: dict[str, tuple[int, LegMarks]] = {}
        # per position over its path: value at mid and delta/gamma/vega/theta, dollars
        self._totals: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def start_path(self, i: int, position: Position) -> None:
        marks_path = getattr(self.chains, "marks_path", None)
        if marks_path is None:
            return
        expiry = position.front_expiry
        j = min(int(np.searchsorted(self._date_ord, expiry.toordinal(), side="right")), len(self.index))
        m = marks_path(self.index[i:j], *_contract_arrays(position))
        self.paths[position.position_id] = (i, LegMarks(m.bid, m.ask, m.mid, m.delta, m.gamma, m.vega, m.theta))
        w = _weights(position)
        self._totals[position.position_id] = (i, m.mid @ w, np.stack([m.delta @ w, m.gamma @ w, m.vega @ w,
                                                                     m.theta @ w], axis=1))

    def totals(self, i: int, pid: str, mk: LegMarks, position: Position) -> tuple[float, np.ndarray]:
        """Value at mid and Greeks in dollars of one position at bar ``i``."""
        t = self._totals.get(pid)
        if t is not None and 0 <= i - t[0] < len(t[1]):
            return float(t[1][i - t[0]]), t[2][i - t[0]]
        w = _weights(position)
        return float(w @ mk.mid), np.array([w @ mk.delta, w @ mk.gamma, w @ mk.vega, w @ mk.theta])

    def prune(self, open_ids: Mapping[str, object]) -> None:
        """Drop the paths of positions no longer open (a long run would otherwise keep them all)."""
        for pid in [p for p in self.paths if p not in open_ids]:
            del self.paths[pid]
            self._totals.pop(pid, None)

    def marks(self, i: int, positions: Mapping[str, Position]) -> dict[str, LegMarks]:
        out: dict[str, LegMarks] = {}
        rest = []
        for pid, pos in positions.items():
            path = self.paths.get(pid)
            if path is not None and i - path[0] < len(path[1].bid):
                r = i - path[0]
                p = path[1]
                out[pid] = LegMarks(p.bid[r], p.ask[r], p.mid[r], p.delta[r], p.gamma[r], p.vega[r], p.theta[r])
            else:
                rest.append(pos)
        if rest:
            arrays = [np.concatenate(a) for a in zip(*(_contract_arrays(p) for p in rest), strict=True)]
            m = self.chains.marks(self.index[i], arrays[0], arrays[1], arrays[2])
            k = 0
            for pos in rest:
                s = slice(k, k + len(pos.legs))
                out[pos.position_id] = LegMarks(m.bid[s], m.ask[s], m.mid[s], m.delta[s], m.gamma[s], m.vega[s],
                                                m.theta[s])
                k += len(pos.legs)
        return out


class BacktestDriver:
    def __init__(self, cfg: AppConfig, bars: pd.DataFrame, features: FeatureSet, chains: ChainSource,
                 first_bar: int = 0, ex_dividend: Mapping[dt.date, float] | None = None) -> None:
        self.cfg = cfg
        self.index = pd.DatetimeIndex(bars.index)
        self.close = bars["close"].to_numpy(float)
        self.open_ = bars["open"].to_numpy(float)
        self.features = features
        self.chains = chains
        self.first_bar = first_bar
        g = cfg.gates
        events = tuple(g.event_kinds) if g.event_blackout_sessions is not None or g.event_close_sessions is not None \
            else None
        self.builder = SnapshotBuilder(bars, features, chains, cfg.backtest.bar_minutes, cfg.strategy.underlying,
                                       ex_dividend, event_kinds=events)
        self.broker = SimBroker.from_config(cfg.backtest)
        self.marker = Marker(chains, self.index, self.builder.dates)
        self.recorder = Recorder(len(bars))
        self._marks: dict[str, LegMarks] = {}
        self._sod_equity = float(cfg.backtest.cash)
        self._halted = False
        self._seq = 0

    @property
    def rec(self) -> BarRecord:
        return self.recorder.rec

    @property
    def decisions(self) -> list[str]:
        return self.recorder.lines

    # -- the bar -----------------------------------------------------------------------
    def on_bar(self, i: int) -> None:
        if i < self.first_bar:
            return
        ts = self.builder.stamps[i]
        open_positions = self.broker.open_positions()
        if len(self.marker.paths) > len(open_positions):
            self.marker.prune(open_positions)
        self._marks = self.marker.marks(i, open_positions)
        self.broker.set_market(ts, float(self.open_[i]), float(self.close[i]), SourceChainView(self.chains, ts),
                               self._marks)
        if i == self.first_bar or self.builder.first_of_day[i]:
            for e in self.broker.start_session():
                self.recorder.event(e)
            self._sod_equity = float(self.rec.equity[i - 1]) if i > self.first_bar else self.broker.cash
            self._halted = False
        for d in decide(self.builder.snapshot(i, self._book(i)), self.cfg):
            self._execute(i, d)
        if self.builder.last_of_day[i]:
            for e in self.broker.end_session(self.builder.next_ex.get(self.builder.dates[i])):
                self.recorder.event(e)
        self._record(i)

    def _book(self, i: int) -> Book:
        b = self.broker
        positions = tuple(BookPosition(op.position, self._marks[pid], op.reserved) for pid, op in b.positions.items())
        return Book(positions, b.cash, b.reserved, b.shares, b.hedge_shares, float(self.close[i]), self._sod_equity,
                    self._halted)

    def _execute(self, i: int, d: TradeDecision) -> None:
        ts = self.builder.stamps[i]
        if d.action is Action.HALT:
            self._halted = True
        elif d.action is Action.EXIT:
            res = self.broker.submit(OrderRequest(f"X{d.position_id}", OrderIntent.CLOSE, d.structure, d.qty,
                                                  position_id=d.position_id, exit_reason=d.exit_reason))
            pnl = f"; pnl {res.trade.pnl:+.2f}" if res.trade is not None else f"; rejected: {res.text}"
            reason = d.exit_reason.value if d.exit_reason else ""
            self.recorder.decision(ts, d, f"{reason}: {'; '.join(d.reasons)}{pnl}")
        elif d.action is Action.ENTER:
            self._enter(i, ts, d)
        elif d.action is Action.ROLL:
            self._roll(i, ts, d)
        elif d.action is Action.HEDGE:
            self.broker.trade_shares(d.qty, "delta hedge")
            self.recorder.decision(ts, d, f"{d.qty:+.0f} shares at {self.close[i]:.2f} ({'; '.join(d.reasons)}); "
                                          f"hedge now {self.broker.hedge_shares:+.0f}")
        else:
            self.recorder.decision(ts, d)

    def _roll(self, i: int, ts: dt.datetime, d: TradeDecision) -> None:
        """ROLL: close ``d.position_id`` and, when that filled, open ``d.legs`` linked to it."""
        res = self.broker.submit(OrderRequest(f"X{d.position_id}", OrderIntent.CLOSE, d.structure, d.qty,
                                              position_id=d.position_id, exit_reason=d.exit_reason))
        reason = d.exit_reason.value if d.exit_reason else ""
        if res.trade is None:
            self.recorder.decision(ts, d, f"{reason}: {'; '.join(d.reasons)}; rejected: {res.text}")
            return
        self.recorder.decision(ts, d, f"{reason}: {'; '.join(d.reasons)}; pnl {res.trade.pnl:+.2f}")
        self._enter(i, ts, TradeDecision(Action.ENTER, d.structure, d.legs, d.qty,
                                         (f"rolled from {d.position_id}: {'; '.join(d.reasons)}",), d.codes, d.scores,
                                         limit=d.limit))

    def _enter(self, i: int, ts: dt.datetime, d: TradeDecision) -> None:
        self._seq += 1
        pid = f"P{self._seq:04d}"
        extra = {"features": self.features.values_at(i), "scores": dict(d.scores), "reason": d.reasons[0]}
        res = self.broker.submit(OrderRequest(pid, OrderIntent.OPEN, d.structure, d.qty, d.legs, limit=d.limit,
                                              tag=extra))
        if res.status is not OrderStatus.FILLED or res.position is None:
            self.recorder.decision(ts, TradeDecision(Action.SKIP, d.structure, codes=(ReasonCode.BROKER_REJECT,)),
                                   f"broker rejected: {res.text}")
            return
        self.marker.start_path(i, res.position)
        self._marks.update(self.marker.marks(i, {pid: res.position}))
        self.recorder.decision(ts, d, f"{pid} {d.reasons[0]}", position_id=pid)

    def _record(self, i: int) -> None:
        value = 0.0
        g = np.zeros(4)
        for pid, op in self.broker.positions.items():
            v, greeks = self.marker.totals(i, pid, self._marks[pid], op.position)
            value += v
            g += greeks
        g[0] += self.broker.shares
        r = self.rec
        r.cash[i] = self.broker.cash
        r.positions_value[i] = value + self.broker.shares * float(self.close[i])
        r.equity[i] = self.broker.cash + r.positions_value[i]
        r.open_positions[i] = len(self.broker.positions)
        r.greeks[i] = g

    def finish(self) -> list[ClosedTrade]:
        """Close what is still open at the last bar's marks (END_OF_DATA)."""
        i = len(self.index) - 1
        if i < 0:
            return self.broker.closed
        ts = self.index[i].to_pydatetime()
        marks = self.marker.marks(i, self.broker.open_positions())
        for pid in list(self.broker.positions):
            mk = marks[pid]
            self.broker.close(pid, mk.bid, mk.ask, ExitReason.END_OF_DATA)
            self.recorder.end_of_data(ts, pid, "end of data", ExitReason.END_OF_DATA)
        if self.broker.shares:
            self.broker.trade_shares(-self.broker.shares, "end of data", float(self.close[i]))
        self._record(i)
        return self.broker.closed


def _weights(position: Position) -> np.ndarray:
    return np.array(position.signed_qty, float) * CONTRACT_MULTIPLIER


def _contract_arrays(position: Position) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    legs = position.legs
    return (np.array([leg.contract.expiry for leg in legs], dtype="datetime64[D]"),
            np.array([leg.contract.strike for leg in legs], dtype=float),
            np.array([leg.contract.right is OptionRight.CALL for leg in legs]))
