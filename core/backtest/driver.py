"""The backtest driver: per bar it marks, exits, settles, enters and records.

Backtrader owns the clock (core/engine.py calls ``on_bar(i)`` once per base bar); this class
owns no trading logic of its own — decisions come from ``strategies`` and ``risk``, fills and
cash from ``core.broker.sim``.  Features are precomputed arrays aligned to the bars.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from core.broker.sim import ClosedTrade, FeeModel, FillModel, SimBroker
from core.config import AppConfig
from core.dto import CONTRACT_MULTIPLIER, Action, BrokerError, ExitReason, OptionRight, Regime, Side
from data_factory.base import ChainSource
from risk.greeks import BookGreeks
from risk.manager import DrawdownGuard, RiskLimits, RiskManager
from strategies.entry import BookState, EntryView, decide_entry
from strategies.exits import ExitInputs, ExitRules, exit_reason
from strategies.iron_condor import CondorCandidate

_REGIMES = list(Regime)


@dataclass(slots=True)
class BarRecord:
    """Per-bar arrays filled by the driver (equity.csv, greeks.csv)."""

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


class BacktestDriver:
    def __init__(self, cfg: AppConfig, bars: pd.DataFrame, features: Mapping[str, np.ndarray],
                 chains: ChainSource, first_bar: int = 0, ex_dividend: Mapping[dt.date, float] | None = None,
                 score_fn=None) -> None:
        self.cfg = cfg
        self.bars = bars
        self.index = pd.DatetimeIndex(bars.index)
        self.close = bars["close"].to_numpy(float)
        self.open_ = bars["open"].to_numpy(float)
        self.features = features
        self.chains = chains
        self.first_bar = first_bar
        self.ex_dividend = dict(ex_dividend or {})
        self.score_fn = score_fn
        bt = cfg.backtest
        self.broker = SimBroker(bt.cash, FillModel(bt.fill_model, bt.fill_fraction),
                                FeeModel(bt.commission_per_contract, bt.reg_fee_per_contract))
        r = cfg.risk
        self.risk = RiskManager(RiskLimits(r.max_trade_delta, r.max_trade_vega, r.max_portfolio_delta,
                                           r.max_portfolio_gamma, r.max_portfolio_vega, r.max_daily_drawdown,
                                           r.max_account_risk_per_trade, r.gamma_dte_days, r.max_near_expiry_gamma,
                                           True, r.flatten_on_drawdown))
        self.guard = DrawdownGuard(r.max_daily_drawdown, r.flatten_on_drawdown)
        self.exit_rules = ExitRules(cfg.exits.profit_pct, cfg.exits.loss_multiple, cfg.exits.max_hold_days,
                                    cfg.exits.dte_exit, cfg.gates.use_regime_gate, cfg.exits.breakout_exit,
                                    cfg.exits.profit_target)
        n = len(bars)
        self.rec = BarRecord(n)
        self.decisions: list[str] = []
        dates = self.index.tz_localize(None).normalize() if self.index.tz is not None else self.index.normalize()
        self.dates = np.array([d.date() for d in dates]) if n else np.array([])
        self.hhmm = (self.index.hour * 100 + self.index.minute).to_numpy()
        self.last_of_day = np.r_[self.dates[1:] != self.dates[:-1], True] if n else np.array([], bool)
        h, m = (int(x) for x in bt.entry_time.split(":"))
        self.entry_hhmm = h * 100 + m
        self._pending_delivery = 0.0  # assigned shares to sell at the next open
        self._hedge_shares = 0.0  # shares held as a delta hedge
        days = sorted(set(self.dates.tolist()))
        self._next_session = dict(zip(days[:-1], days[1:], strict=True))
        self._book_greeks = BookGreeks()
        self._marks_cache: dict[str, tuple[np.ndarray, ...]] = {}
        self._paths: dict[str, tuple[int, tuple[np.ndarray, ...]]] = {}
        self._short_dte_gamma = 0.0
        self._date_ord = np.array([d.toordinal() for d in self.dates], dtype=np.int64)
        self._seq = 0

    # -- helpers ---------------------------------------------------------------------
    def _feature(self, name: str, i: int) -> float:
        arr = self.features.get(name)
        return float(arr[i]) if arr is not None else math.nan

    def _row(self, i: int) -> dict[str, float]:
        return {k: float(v[i]) for k, v in self.features.items() if v.dtype.kind in "fiub"}

    def _log(self, i: int, action: str, text: str) -> None:
        self.decisions.append(f"{self.index[i].isoformat()} {action:<5} {text}")

    def _marks(self, i: int) -> dict[str, tuple[np.ndarray, ...]]:
        """bid, ask, mid, delta, gamma, vega, theta per open position at bar ``i``.

        Positions opened on a source with ``marks_path`` were marked over their whole
        remaining life in one vectorised call at entry; others are marked here, all legs of
        all positions in one call."""
        out: dict[str, tuple[np.ndarray, ...]] = {}
        rest = []
        for pid, op in self.broker.positions.items():
            path = self._paths.get(pid)
            if path is not None and i - path[0] < len(path[1][0]):
                r = i - path[0]
                out[pid] = tuple(a[r] for a in path[1])
            else:
                rest.append(op)
        if rest:
            legs = [leg for op in rest for leg in op.position.legs]
            m = self.chains.marks(self.index[i], *_contract_arrays(legs))
            k = 0
            for op in rest:
                s = slice(k, k + len(op.position.legs))
                out[op.pid] = (m.bid[s], m.ask[s], m.mid[s], m.delta[s], m.gamma[s], m.vega[s], m.theta[s])
                k += len(op.position.legs)
        return out

    def _mark_path(self, i: int, pid: str) -> None:
        """Mark a new position from bar ``i`` to the close of its expiry day in one call."""
        marks_path = getattr(self.chains, "marks_path", None)
        if marks_path is None:
            return
        legs = self.broker.positions[pid].position.legs
        expiry = legs[0].contract.expiry
        j = min(int(np.searchsorted(self._date_ord, expiry.toordinal(), side="right")), len(self.index))
        m = marks_path(self.index[i:j], *_contract_arrays(legs))
        self._paths[pid] = (i, (m.bid, m.ask, m.mid, m.delta, m.gamma, m.vega, m.theta))

    # -- the bar -----------------------------------------------------------------------
    def on_bar(self, i: int) -> None:
        if i < self.first_bar:
            return
        new_day = i == self.first_bar or self.dates[i] != self.dates[i - 1]
        if new_day:
            self._start_day(i)
        marks = self._marks(i)
        self._check_exits(i, marks)
        if self.last_of_day[i]:
            self._end_of_day(i, marks)
        evaluate = self.cfg.backtest.entry_every_bar or self.hhmm[i] == self.entry_hhmm
        if evaluate and self._evaluate_entry(i, marks):
            marks = self._marks(i)
        if self.cfg.hedge.enable_hedge:
            self._hedge(i, marks)
        self._record(i, marks)

    def _hedge(self, i: int, marks: Mapping[str, tuple[np.ndarray, ...]]) -> None:
        """Delta hedge with shares (SPEC exit 6): when |book delta per contract| exceeds the
        threshold, trade shares at the bar's close so the book's delta returns to ~0; unwind
        the hedge when no option position is left."""
        contracts = sum(op.position.qty for op in self.broker.positions.values())
        if contracts == 0:
            if self._hedge_shares:
                self._trade_hedge(i, -self._hedge_shares, "unwind hedge: no open position")
            return
        option_delta = 0.0
        for op in self.broker.positions.values():
            w = np.array([leg.side.sign * leg.qty for leg in op.position.legs], float) * CONTRACT_MULTIPLIER
            option_delta += float(w @ marks[op.pid][3])
        per_contract = (option_delta + self._hedge_shares) / (CONTRACT_MULTIPLIER * contracts)
        if abs(per_contract) > self.cfg.hedge.hedge_threshold:
            target = -round(option_delta)
            self._trade_hedge(i, target - self._hedge_shares,
                              f"net delta {per_contract:+.3f} per contract beyond ±{self.cfg.hedge.hedge_threshold:g}")

    def _trade_hedge(self, i: int, qty: float, why: str) -> None:
        if qty == 0:
            return
        self.broker.trade_shares(self.index[i], qty, float(self.close[i]), "delta hedge")
        self._hedge_shares += qty
        self._log(i, "HEDGE", f"{qty:+.0f} shares at {self.close[i]:.2f} ({why}); hedge now {self._hedge_shares:+.0f}")

    def _start_day(self, i: int) -> None:
        if self._pending_delivery:
            self.broker.trade_shares(self.index[i], -self._pending_delivery, self.open_[i], "flatten assigned shares")
            self._log(i, "EXIT", f"closed {self._pending_delivery:+.0f} assigned shares at open {self.open_[i]:.2f}")
        self._pending_delivery = 0.0
        prev_equity = self.rec.equity[i - 1] if i > self.first_bar else self.broker.cash
        self.guard.start_day(float(prev_equity))

    def _position_state(self, i: int, pid: str, mk: tuple[np.ndarray, ...]) -> ExitInputs:
        pos = self.broker.positions[pid].position
        debit = float(sum(-leg.side.sign * mid * leg.qty for leg, mid in zip(pos.legs, mk[2], strict=True))) / pos.qty
        code = self._feature("regime_code", i)
        regime = _REGIMES[int(code)] if math.isfinite(code) else None
        return ExitInputs(
            credit=pos.credit, mark_debit=debit, dte=(pos.legs[0].contract.expiry - self.dates[i]).days,
            held_days=(self.dates[i] - pos.opened_at.date()).days, spot=float(self.close[i]),
            short_put=_strike(pos, "short_put"), short_call=_strike(pos, "short_call"), regime=regime,
            bb_upper=self._feature("bb_upper", i), bb_lower=self._feature("bb_lower", i))

    def _check_exits(self, i: int, marks: dict[str, tuple[np.ndarray, ...]]) -> None:
        flatten = self.guard.update(self._equity_now(marks, i)) and self.guard.take_flatten()
        for pid in list(self.broker.positions):
            state = self._position_state(i, pid, marks[pid])
            reason: ExitReason | None
            if flatten:
                reason, why = ExitReason.DRAWDOWN_FLATTEN, "daily drawdown stop: flatten"
            else:
                reason, why = exit_reason(state, self.exit_rules)
            if state.dte <= 0 and (self.last_of_day[i] or reason in (None, ExitReason.DTE_EXIT)):
                continue  # expiring today: settled against the closing price, not traded
            if reason is None:
                continue
            mk = marks.pop(pid)
            trade = self.broker.close(self.index[i], pid, mk[0], mk[1], reason)
            self._log(i, "EXIT", f"{pid} {reason.value}: {why}; pnl {trade.pnl:+.2f}")

    def _end_of_day(self, i: int, marks: dict[str, tuple[np.ndarray, ...]]) -> None:
        today = self.dates[i]
        spot = float(self.close[i])
        next_ex = self._next_ex_dividend(today)
        for pid in list(self.broker.positions):
            op = self.broker.positions[pid]
            expiry = op.position.legs[0].contract.expiry
            if expiry <= today:
                shares = self.broker.assignment_shares(op.position, spot)
                trade = self.broker.settle(self.index[i], pid, spot, ExitReason.EXPIRY)
                marks.pop(pid, None)
                self._deliver(i, shares, spot)
                self._log(i, "EXIT", f"{pid} expiry settled at {spot:.2f}; pnl {trade.pnl:+.2f}")
            elif next_ex is not None:
                self._early_assignment(i, pid, marks, next_ex)

    def _next_ex_dividend(self, today: dt.date) -> float | None:
        """Dividend per share when the next session in the data is an ex-dividend date."""
        nxt = self._next_session.get(today)
        return self.ex_dividend.get(nxt) if nxt is not None else None

    def _early_assignment(self, i: int, pid: str, marks: dict[str, tuple[np.ndarray, ...]], dividend: float) -> None:
        op = self.broker.positions[pid]
        mk = marks[pid]
        spot = float(self.close[i])
        for j, leg in enumerate(op.position.legs):
            if leg.side is Side.SHORT and leg.contract.right is OptionRight.CALL and spot > leg.contract.strike:
                extrinsic = float(mk[2][j]) - (spot - leg.contract.strike)
                if extrinsic < dividend:
                    shares = -CONTRACT_MULTIPLIER * leg.qty
                    bids, asks = mk[0].copy(), mk[1].copy()
                    bids[j] = asks[j] = spot - leg.contract.strike  # assigned at intrinsic
                    trade = self.broker.close(self.index[i], pid, bids, asks, ExitReason.ASSIGNMENT)
                    marks.pop(pid, None)
                    self._deliver(i, shares, spot)
                    self._log(i, "EXIT", f"{pid} short call {leg.contract.strike:g} assigned before ex-dividend "
                              f"(extrinsic {extrinsic:.3f} < dividend {dividend:.3f}); pnl {trade.pnl:+.2f}")
                    return

    def _deliver(self, i: int, shares: float, spot: float) -> None:
        if shares == 0:
            return
        self.broker.trade_shares(self.index[i], shares, spot, "assignment delivery at close")
        if self.cfg.backtest.assignment_close == "same_close":
            self.broker.trade_shares(self.index[i], -shares, spot, "flatten at close")
        else:
            self._pending_delivery += shares

    def _risk_check(self, i: int):
        def check(cand: CondorCandidate, qty: int) -> tuple[int, tuple[str, ...]]:
            unit = BookGreeks(cand.net_greek("delta") * 100, cand.net_greek("gamma") * 100,
                              cand.net_greek("vega") * 100, cand.net_greek("theta") * 100)
            verdict = self.risk.check_entry(unit, self._book_greeks, qty, cand.max_loss * CONTRACT_MULTIPLIER,
                                            self._equity_now(self._marks_cache, i), dte=cand.dte,
                                            short_dte_book_gamma=self._short_dte_gamma)
            return verdict.qty, verdict.reasons
        return check

    def _evaluate_entry(self, i: int, marks: dict[str, tuple[np.ndarray, ...]]) -> bool:
        """Evaluate (and log) an entry at bar ``i``; True when a position was opened."""
        self._marks_cache = marks
        ts = self.index[i]
        s = self.cfg.strategy
        blocked = ""
        if self.guard.tripped:
            blocked = f"daily drawdown stop ({self.guard.day_drawdown(self._equity_now(marks, i)):.2%}) active"
        book = BookState(len(self.broker.positions), self._equity_now(marks, i), self.broker.reserved, blocked)
        features = self._row(i)
        slices = []
        if not blocked and len(self.broker.positions) < s.max_positions:
            slices = [self.chains.expiry_slice(ts, e) for e in self.chains.expiries(ts)
                      if s.dte_min <= (e - self.dates[i]).days <= s.dte_max]
        view = EntryView(ts, float(self.close[i]), features, slices)
        decision = decide_entry(view, book, self.cfg, self._risk_check(i), self.score_fn)
        if self.cfg.fuzzy.use_fuzzy or self.cfg.mtf.use_mtf:
            from intelligence.pipeline import factor_log

            scores: dict[str, Any] = {**decision.scores, "_factors": factor_log(features, self.cfg.fuzzy.weights)}
            decision = replace(decision, scores=scores)
        if decision.action is not Action.ENTER:
            self._log(i, "SKIP", "; ".join(decision.reasons) + _fmt_scores(decision.scores))
            return False
        return self._open(i, decision, features, slices)

    def _open(self, i: int, decision, features: dict[str, float], slices) -> bool:
        by_expiry = {sl.expiry: sl for sl in slices}
        legs = []
        for leg in decision.legs:
            sl = by_expiry[leg.contract.expiry]
            q = sl.quote(leg.contract.strike, leg.contract.right, leg.contract.underlying, self.index[i])
            legs.append((leg, q.bid, q.ask))
        widths = (_width(decision.legs, OptionRight.PUT), _width(decision.legs, OptionRight.CALL))
        self._seq += 1
        pid = f"P{self._seq:04d}"
        extra = {"features": features, "scores": dict(decision.scores), "reason": decision.reasons[0]}
        try:
            self.broker.open(self.index[i], pid, decision.structure, legs, decision.qty, max(widths), extra)
        except BrokerError as exc:
            self._log(i, "SKIP", f"broker rejected: {exc}")
            return False
        self._mark_path(i, pid)
        self._log(i, "ENTER", f"{pid} {decision.reasons[0]}" + _fmt_scores(decision.scores))
        return True

    def _equity_now(self, marks: Mapping[str, tuple[np.ndarray, ...]], i: int) -> float:
        """Cash + open options at mid + shares at the bar's close."""
        value = 0.0
        for op in self.broker.positions.values():
            w = [leg.side.sign * leg.qty for leg in op.position.legs]
            value += float(np.dot(w, marks[op.pid][2])) * CONTRACT_MULTIPLIER
        return self.broker.cash + value + self.broker.shares * float(self.close[i])

    def _record(self, i: int, marks: Mapping[str, tuple[np.ndarray, ...]]) -> None:
        value = 0.0
        g = np.zeros(4)
        short_gamma = 0.0
        for op in self.broker.positions.values():
            mk = marks[op.pid]
            w = np.array([leg.side.sign * leg.qty for leg in op.position.legs], float) * CONTRACT_MULTIPLIER
            value += float(w @ mk[2])
            g += [w @ mk[3], w @ mk[4], w @ mk[5], w @ mk[6]]
            if (op.position.legs[0].contract.expiry - self.dates[i]).days <= self.cfg.risk.gamma_dte_days:
                short_gamma += float(w @ mk[4])
        self._short_dte_gamma = short_gamma
        g[0] += self.broker.shares
        self._book_greeks = BookGreeks(*g)
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
        marks = self._marks(i)
        for pid in list(self.broker.positions):
            mk = marks[pid]
            self.broker.close(self.index[i], pid, mk[0], mk[1], ExitReason.END_OF_DATA)
            self._log(i, "EXIT", f"{pid} end of data")
        if self.broker.shares:
            self.broker.trade_shares(self.index[i], -self.broker.shares, float(self.close[i]), "end of data")
        self._record(i, {})
        return self.broker.closed


def _contract_arrays(legs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([leg.contract.expiry for leg in legs], dtype="datetime64[D]"),
            np.array([leg.contract.strike for leg in legs], dtype=float),
            np.array([leg.contract.right is OptionRight.CALL for leg in legs]))


def _strike(pos, name: str) -> float:
    for leg in pos.legs:
        if leg.name.value == name:
            return leg.contract.strike
    return math.nan


def _width(legs, right: OptionRight) -> float:
    ks = [leg.contract.strike for leg in legs if leg.contract.right is right]
    return max(ks) - min(ks) if ks else 0.0


def _fmt_scores(scores: Mapping[str, object]) -> str:
    if not scores:
        return ""
    text = " | " + " ".join(f"{k}={v:.4g}" for k, v in scores.items() if not isinstance(v, str))
    factors = scores.get("_factors")
    return text + (f" | {factors}" if isinstance(factors, str) else "")
