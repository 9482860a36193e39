"""THE decision core: ``decide(snapshot, cfg) -> decisions`` for every driver.

Pure: the same snapshot gives the same decisions and nothing is mutated.  Within one bar, in
this order:

1. the daily drawdown stop (``risk.drawdown``): HALT on the bar it trips, and with
   ``flatten_on_drawdown`` an EXIT of every position;
2. exits of each open position in book order (``strategies.exits``, SPEC priority), except
   that a position expiring today is left to the venue's settlement at the close; with
   ``exits.on_dte = "roll"`` / ``exits.on_breakout = "adjust"`` the DTE and breakout exits
   become ROLL decisions (``strategies.rolls``: close and reopen, linked by ``rolled_from``);
3. the entry (once a day at ``entry_time``, or every bar): ENTER or SKIP with its reason,
   judged on the book as it stands after 1–2 and after today's expiries settle;
4. the delta hedge (``strategies.hedging``) of the book after 1–3.

Equity for sizing is the bar's marked equity (cash + positions at mid + shares) before this
bar's exits fill — what a live loop knows when it sends its orders together.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from analytics import payoff
from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    Action,
    BookPosition,
    ExitReason,
    MarketSnapshot,
    OptionRight,
    Position,
    ReasonCode,
    Regime,
    TradeDecision,
)
from risk.drawdown import check_drawdown
from risk.greeks import BookGreeks
from strategies.entry import EntryBook, decide_entry, session_event
from strategies.exits import ExitInputs, ExitRules, crash_why, exit_reason, expiring_today_holds
from strategies.hedging import hedge_trade
from strategies.rolls import roll_decision
from strategies.structures.catalog import SPECS


def position_exit_inputs(snap: MarketSnapshot, bp: BookPosition) -> ExitInputs:
    f = snap.features
    regime = f.regime
    return _exit_inputs(snap, bp, regime, f.bb_upper, f.bb_lower, crash_why(f) if regime is Regime.CRASH_MODE else "")


def _exit_inputs(snap: MarketSnapshot, bp: BookPosition, regime: Regime | None, bb_upper: float, bb_lower: float,
                 regime_why: str = "") -> ExitInputs:
    pos = bp.position
    day = snap.session.session_date
    short_puts, short_calls = pos.short_strikes(OptionRight.PUT), pos.short_strikes(OptionRight.CALL)
    return ExitInputs(credit=pos.credit, mark_debit=bp.mark_debit, dte=(pos.front_expiry - day).days,
                      held_days=(day - pos.opened_at.date()).days, spot=snap.spot,
                      short_puts=short_puts, short_calls=short_calls,
                      regime=regime, bb_upper=bb_upper, bb_lower=bb_lower, regime_why=regime_why,
                      max_profit=_max_profit_basis(pos) if pos.structure in _MAX_PROFIT_BASIS else None,
                      multi_expiry=pos.structure in _TWO_EXPIRY,
                      has_short=bool(short_puts or short_calls))


_MAX_PROFIT_BASIS = frozenset(kind for kind, spec in SPECS.items() if not spec.wing_defined and not spec.debit)
_TWO_EXPIRY = frozenset(kind for kind, spec in SPECS.items() if spec.slots > 1)


def _max_profit_basis(pos: Position) -> float | None:
    """The profit/stop basis of a credit structure whose max profit is not its credit (a
    broken-wing butterfly); None for condors, spreads and debit structures (their rules read
    the credit or the debit)."""
    if pos.structure not in _MAX_PROFIT_BASIS:
        return None
    legs = pos.legs
    strikes = np.array([leg.contract.strike for leg in legs], float)
    is_call = np.array([leg.contract.right is OptionRight.CALL for leg in legs])
    ratios = np.array(pos.signed_qty, float) / pos.qty
    best = payoff.max_profit(strikes, is_call, ratios, pos.credit)
    return best if np.isfinite(best) and best > 0 else None


class _PerConfig:
    """Values derived from one config, computed once per config object rather than per bar."""

    __slots__ = ("cfg", "rules", "entry_hm", "event_close", "exit_hm")

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg  # held, so the identity check below cannot match a recycled id
        self.rules = ExitRules.from_config(cfg)
        h, m = (int(x) for x in cfg.backtest.entry_time.split(":"))
        self.entry_hm = (h, m)
        self.event_close: int | None = cfg.gates.event_close_sessions
        at = cfg.exits.intraday_exit_time
        self.exit_hm: tuple[int, int] | None = None
        if at:
            eh, em = (int(x) for x in str(at).split(":"))
            self.exit_hm = (eh, em)


_last: _PerConfig | None = None


def _per_config(cfg: AppConfig) -> _PerConfig:
    global _last
    if _last is None or _last.cfg is not cfg:
        _last = _PerConfig(cfg)
    return _last


def exit_decisions(snap: MarketSnapshot, cfg: AppConfig, flatten: bool) -> list[TradeDecision]:
    if not snap.book.positions:
        return []
    pc = _per_config(cfg)
    rules = pc.rules
    out = []
    f = snap.features
    regime, bb_upper, bb_lower = f.regime, f.bb_upper, f.bb_lower  # read once per bar, not per position
    regime_why = crash_why(f) if regime is Regime.CRASH_MODE else ""
    event_close = _event_close(snap, pc.event_close) if pc.event_close is not None else ""
    for bp in snap.book.positions:
        x = _exit_inputs(snap, bp, regime, bb_upper, bb_lower, regime_why)
        reason, why = exit_reason(x, rules)
        if event_close and reason not in _RISK_EXITS:
            reason, why = ExitReason.EVENT, event_close
        elif pc.exit_hm is not None and (reason is None or reason is ExitReason.DTE_EXIT):
            timed = _time_exit(snap, x.dte, pc.exit_hm)
            if timed:
                reason, why = ExitReason.TIME_EXIT, timed
        if flatten:
            reason, why = ExitReason.DRAWDOWN_FLATTEN, "daily drawdown stop: flatten"
        if reason is None or expiring_today_holds(x.dte, snap.session.last_bar, reason):
            continue
        if not flatten and reason is ExitReason.BREAKOUT and rules.on_breakout == "adjust":
            if x.held_days == 0:
                continue  # at most one adjustment a session: opened or adjusted today, held until tomorrow
            out.append(roll_decision(snap, bp, reason, why, cfg, adjust=True))
            continue
        if not flatten and reason is ExitReason.DTE_EXIT and rules.on_dte == "roll":
            out.append(roll_decision(snap, bp, reason, why, cfg, adjust=False))
            continue
        code = ReasonCode.EVENT_CLOSE if reason is ExitReason.EVENT else ReasonCode.EXIT
        out.append(TradeDecision(Action.EXIT, bp.position.structure, qty=bp.position.qty, reasons=(why,),
                                 codes=(code,), exit_reason=reason, position_id=bp.position.position_id))
    return out


_RISK_EXITS = (ExitReason.PROFIT_TARGET, ExitReason.STOP_LOSS, ExitReason.CRASH_MODE)


def _event_close(snap: MarketSnapshot, close: int) -> str:
    """Why the book goes flat before a scheduled event ("" when not due):
    ``gates.event_close_sessions`` N closes every position from N sessions before the event."""
    n, label = session_event(snap)
    if n is None or n < 0 or n > close:
        return ""
    when = "today" if n == 0 else f"in {n} session(s)"
    return f"{label or 'scheduled event'} {when}: flat within {close} session(s) before an event"


def _time_exit(snap: MarketSnapshot, dte: int, at: tuple[int, int]) -> str:
    """Same-day expiries (0 DTE) close at ``exits.intraday_exit_time`` (HH:MM New York) instead
    of settling at the close; "" when not expiring today or not yet that time."""
    if dte > 0 or (snap.ts.hour, snap.ts.minute) < at:
        return ""
    return f"expires today: intraday exit at {at[0]:02d}:{at[1]:02d}"


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


def _hedge(snap: MarketSnapshot, kept: list[BookPosition], entry: TradeDecision | None, cfg: AppConfig,
           rolls: list[TradeDecision] | None = None) -> TradeDecision | None:
    contracts = sum(bp.position.qty for bp in kept)
    option_delta = sum(float(bp.weights @ bp.marks.delta) for bp in kept)
    opened = [d for d in (rolls or [])]
    if entry is not None and entry.action is Action.ENTER:
        opened.append(entry)
    for d in opened:
        contracts += d.qty
        unit = float(d.scores.get("unit_delta", 0.0))
        option_delta += unit * CONTRACT_MULTIPLIER * d.qty
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
    rolls = [d for d in exits if d.action is Action.ROLL]
    if is_entry_bar(snap.ts, cfg):
        greeks, short_gamma = _book_greeks(snap, kept, cfg)
        halted = f"daily drawdown stop ({dd.drawdown:.2%}) active" if dd.tripped else ""
        reserved = sum(bp.reserved for bp in kept)
        for r in rolls:  # a roll's replacement joins the book this bar
            reserved += float(r.scores.get("max_loss_per_contract", 0.0)) * r.qty
        entry = decide_entry(snap, EntryBook(len(kept) + len(rolls), book.equity, reserved, greeks, short_gamma,
                                             halted), cfg)
        out.append(entry)
    if cfg.hedge.enable_hedge:
        hedge = _hedge(snap, kept, entry, cfg, rolls)
        if hedge is not None:
            out.append(hedge)
    return tuple(out)
