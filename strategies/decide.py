"""THE decision core: ``decide(snapshot, cfg) -> decisions`` for every driver.

Pure: the same snapshot gives the same decisions and nothing is mutated.  Within one bar, in
this order:

1. the daily drawdown stop (``risk.drawdown``): HALT on the bar it trips, and with
   ``flatten_on_drawdown`` an EXIT of every position;
2. exits of each open position in book order (``strategies.exits``, SPEC priority), except
   that a position expiring today is left to the venue's settlement at the close;
3. the entry (once a day at ``entry_time``, or every bar): ENTER or SKIP with its reason,
   judged on the book as it stands after 1–2 and after today's expiries settle;
4. the delta hedge (``strategies.hedging``) of the book after 1–3.

Equity for sizing is the bar's marked equity (cash + positions at mid + shares) before this
bar's exits fill — what a live loop knows when it sends its orders together.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    Action,
    BookPosition,
    ExitReason,
    MarketSnapshot,
    OptionRight,
    ReasonCode,
    Regime,
    TradeDecision,
)
from risk.drawdown import check_drawdown
from risk.greeks import BookGreeks
from strategies.entry import EntryBook, decide_entry
from strategies.exits import ExitInputs, ExitRules, exit_reason, expiring_today_holds
from strategies.hedging import hedge_trade


def position_exit_inputs(snap: MarketSnapshot, bp: BookPosition) -> ExitInputs:
    f = snap.features
    return _exit_inputs(snap, bp, f.regime, f.bb_upper, f.bb_lower)


def _exit_inputs(snap: MarketSnapshot, bp: BookPosition, regime: Regime | None, bb_upper: float, bb_lower: float
                 ) -> ExitInputs:
    pos = bp.position
    day = snap.session.session_date
    return ExitInputs(credit=pos.credit, mark_debit=bp.mark_debit, dte=(pos.front_expiry - day).days,
                      held_days=(day - pos.opened_at.date()).days, spot=snap.spot,
                      short_puts=pos.short_strikes(OptionRight.PUT), short_calls=pos.short_strikes(OptionRight.CALL),
                      regime=regime, bb_upper=bb_upper, bb_lower=bb_lower)


class _PerConfig:
    """Values derived from one config, computed once per config object rather than per bar."""

    __slots__ = ("cfg", "rules", "entry_hm")

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg  # held, so the identity check below cannot match a recycled id
        self.rules = ExitRules.from_config(cfg)
        h, m = (int(x) for x in cfg.backtest.entry_time.split(":"))
        self.entry_hm = (h, m)


_last: _PerConfig | None = None


def _per_config(cfg: AppConfig) -> _PerConfig:
    global _last
    if _last is None or _last.cfg is not cfg:
        _last = _PerConfig(cfg)
    return _last


def exit_decisions(snap: MarketSnapshot, cfg: AppConfig, flatten: bool) -> list[TradeDecision]:
    if not snap.book.positions:
        return []
    rules = _per_config(cfg).rules
    out = []
    f = snap.features
    regime, bb_upper, bb_lower = f.regime, f.bb_upper, f.bb_lower  # read once per bar, not per position
    for bp in snap.book.positions:
        x = _exit_inputs(snap, bp, regime, bb_upper, bb_lower)
        reason, why = exit_reason(x, rules)
        if flatten:
            reason, why = ExitReason.DRAWDOWN_FLATTEN, "daily drawdown stop: flatten"
        if reason is None or expiring_today_holds(x.dte, snap.session.last_bar, reason):
            continue
        out.append(TradeDecision(Action.EXIT, bp.position.structure, qty=bp.position.qty, reasons=(why,),
                                 codes=(ReasonCode.EXIT,), exit_reason=reason, position_id=bp.position.position_id))
    return out


def settles_today(snap: MarketSnapshot, bp: BookPosition) -> bool:
    """The venue settles this position at the close of this bar (expiry day, last bar)."""
    return snap.session.last_bar and bp.position.front_expiry <= snap.session.session_date


def _book_greeks(snap: MarketSnapshot, positions: list[BookPosition], cfg: AppConfig) -> tuple[BookGreeks, float]:
    g = np.zeros(4)
    short_gamma = 0.0
    for bp in positions:
        w = bp.weights
        m = bp.marks
        g += [w @ m.delta, w @ m.gamma, w @ m.vega, w @ m.theta]
        if (bp.position.front_expiry - snap.session.session_date).days <= cfg.risk.gamma_dte_days:
            short_gamma += float(w @ m.gamma)
    g[0] += snap.book.shares
    return BookGreeks(*(float(x) for x in g)), short_gamma


def is_entry_bar(ts: dt.datetime, cfg: AppConfig) -> bool:
    if cfg.backtest.entry_every_bar:
        return True
    h, m = _per_config(cfg).entry_hm
    return ts.hour == h and ts.minute == m


def _hedge(snap: MarketSnapshot, kept: list[BookPosition], entry: TradeDecision | None, cfg: AppConfig
           ) -> TradeDecision | None:
    contracts = sum(bp.position.qty for bp in kept)
    option_delta = sum(float(bp.weights @ bp.marks.delta) for bp in kept)
    if entry is not None and entry.action is Action.ENTER:
        contracts += entry.qty
        unit = float(entry.scores.get("unit_delta", 0.0))
        option_delta += unit * CONTRACT_MULTIPLIER * entry.qty
    shares, why = hedge_trade(option_delta, snap.book.hedge_shares, contracts, cfg.hedge.hedge_threshold)
    if shares == 0:
        return None
    code = ReasonCode.HEDGE_UNWIND if contracts == 0 else ReasonCode.HEDGE
    return TradeDecision(Action.HEDGE, qty=shares, reasons=(why,), codes=(code,), limit=snap.spot)


def decide(snap: MarketSnapshot, cfg: AppConfig) -> tuple[TradeDecision, ...]:
    """Every decision for this bar, in execution order (see the module docstring)."""
    book = snap.book
    risk = cfg.risk
    dd = check_drawdown(book.start_of_day_equity, book.equity, book.halted, risk.max_daily_drawdown,
                        risk.flatten_on_drawdown)
    out: list[TradeDecision] = []
    if dd.trips_now:
        out.append(TradeDecision(Action.HALT, reasons=(f"daily drawdown {dd.drawdown:.2%} >= "
                                                       f"{risk.max_daily_drawdown:.2%}: no new entries today",),
                                 codes=(ReasonCode.DRAWDOWN_STOP,)))
    exits = exit_decisions(snap, cfg, dd.flatten_now)
    out.extend(exits)
    closing = {d.position_id for d in exits}
    kept = [bp for bp in book.positions if bp.position.position_id not in closing and not settles_today(snap, bp)]
    entry = None
    if is_entry_bar(snap.ts, cfg):
        greeks, short_gamma = _book_greeks(snap, kept, cfg)
        halted = f"daily drawdown stop ({dd.drawdown:.2%}) active" if dd.tripped else ""
        reserved = sum(bp.reserved for bp in kept)
        entry = decide_entry(snap, EntryBook(len(kept), book.equity, reserved, greeks, short_gamma, halted), cfg)
        out.append(entry)
    if cfg.hedge.enable_hedge:
        hedge = _hedge(snap, kept, entry, cfg)
        if hedge is not None:
            out.append(hedge)
    return tuple(out)
