"""Exit decision tree for an open position — pure, checked on every bar, any structure.

Priority (SPEC §5), first match wins (money per share of one unit; ``basis = |credit|``):

1. profit target: credit structures close at mark debit <= credit x (1 - profit_pct); debit
   structures when the P&L (credit - mark debit) reaches profit_pct x debit
2. stop loss: loss = mark debit - credit >= loss_multiple x basis
3. regime CRASH_MODE (when the regime gate is on): emergency close; the reason names the
   numbers that fired (``crash_why``: e.g. "regime CRASH_MODE (VIX 41.2 >= 35)")
   — not a position with no short leg (the long-put crash hedge is held through it)
   (a position with legs on two expiries, a calendar, closes on its front expiry day before
   the venue settles: ``FRONT_EXPIRY``)
4. DTE (front expiry, calendar days) below ``dte_exit``: close — or with ``exits.on_dte =
   "roll"`` roll into the next eligible expiry (``strategies.rolls``)
5. Bollinger breakout through a short strike: close above the upper band and above a short
   call strike, or below the lower band and below a short put strike — or with
   ``exits.on_breakout = "adjust"`` roll the tested side away (``strategies.rolls``)
6. (delta hedge — ``strategies.hedging``, not an exit)
7. max hold days (calendar days since entry) reached: close

Profit and stop are measured on the structure's max profit when it differs from its credit
(a broken-wing butterfly: near wing + credit); for condors and credit spreads that is the
credit, so their rules read exactly as above.

The expiring-today rule (``expiring_today_holds``) keeps a position that expires today open
so the venue settles it against the closing price, unless a risk exit fires before the last bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import AppConfig
from core.dto import ExitReason, FeatureRow, Regime
from intelligence.regime import crash_reason


@dataclass(frozen=True, slots=True)
class ExitInputs:
    credit: float  # per share of one unit at entry (negative for a debit)
    mark_debit: float  # per share of one unit to close at mid now
    dte: int  # calendar days to the front expiry
    held_days: int  # calendar days since entry
    spot: float
    short_puts: tuple[float, ...] = ()
    short_calls: tuple[float, ...] = ()
    regime: Regime | None = None
    bb_upper: float = float("nan")
    bb_lower: float = float("nan")
    regime_why: str = ""  # the numbers behind the regime (``crash_why``), for the exit line
    max_profit: float | None = None  # basis of profit target and stop when it is not the credit (BWB)
    multi_expiry: bool = False  # legs on two expiries (a calendar): close before the front settles
    has_short: bool = True  # False for a pure long position (the crash hedge): no CRASH_MODE exit


def crash_why(f: FeatureRow) -> str:
    """What put the bar in CRASH_MODE, with its numbers ("" when no crash rule fired)."""
    return crash_reason(f.crash_trigger, f.vix_prev_close, f.day_return, f.vix_change)


@dataclass(frozen=True, slots=True)
class ExitRules:
    profit_pct: float
    loss_multiple: float
    max_hold_days: int
    dte_exit: int
    crash_exit: bool
    breakout_exit: bool
    profit_target: bool
    on_dte: str = "close"  # "close" | "roll"
    on_breakout: str = "close"  # "close" | "adjust"

    @classmethod
    def from_config(cls, cfg: AppConfig) -> ExitRules:
        e = cfg.exits
        return cls(profit_pct=e.profit_pct, loss_multiple=e.loss_multiple, max_hold_days=e.max_hold_days,
                   dte_exit=e.dte_exit, crash_exit=cfg.gates.use_regime_gate, breakout_exit=e.breakout_exit,
                   profit_target=e.profit_target, on_dte=e.on_dte, on_breakout=e.on_breakout)


def _profit_hit(x: ExitInputs, rules: ExitRules) -> tuple[bool, str]:
    if x.max_profit is not None:
        pnl = x.credit - x.mark_debit
        goal = rules.profit_pct * x.max_profit
        return pnl >= goal - 1e-12, f"P&L {pnl:.3f} >= {rules.profit_pct:g} x max profit {x.max_profit:.3f}"
    if x.credit > 0:
        target = x.credit * (1.0 - rules.profit_pct)
        return x.mark_debit <= target + 1e-12, f"mark {x.mark_debit:.3f} <= target {target:.3f}"
    pnl = x.credit - x.mark_debit
    goal = rules.profit_pct * -x.credit
    return pnl >= goal - 1e-12, f"P&L {pnl:.3f} >= {rules.profit_pct:g} x debit {-x.credit:.3f}"


def _breakout(x: ExitInputs) -> str:
    if x.short_calls and x.spot > x.bb_upper and x.spot > min(x.short_calls):
        return f"close {x.spot:.2f} above upper band and short call {min(x.short_calls):g}"
    if x.short_puts and x.spot < x.bb_lower and x.spot < max(x.short_puts):
        return f"close {x.spot:.2f} below lower band and short put {max(x.short_puts):g}"
    return ""


def exit_reason(x: ExitInputs, rules: ExitRules) -> tuple[ExitReason | None, str]:
    """The first exit rule that fires, with a human-readable reason; (None, "") to hold."""
    hit, why = _profit_hit(x, rules)
    if rules.profit_target and hit:
        return ExitReason.PROFIT_TARGET, why
    loss = x.mark_debit - x.credit
    if x.max_profit is None:
        basis = abs(x.credit)
        if loss >= rules.loss_multiple * basis - 1e-12:
            return ExitReason.STOP_LOSS, f"loss {loss:.3f} >= {rules.loss_multiple:g} x credit {x.credit:.3f}"
    elif loss >= rules.loss_multiple * x.max_profit - 1e-12:
        return ExitReason.STOP_LOSS, f"loss {loss:.3f} >= {rules.loss_multiple:g} x max profit {x.max_profit:.3f}"
    if rules.crash_exit and x.regime is Regime.CRASH_MODE and x.has_short:
        return ExitReason.CRASH_MODE, f"regime CRASH_MODE ({x.regime_why})" if x.regime_why else "regime CRASH_MODE"
    if x.multi_expiry and x.dte <= 0:
        return ExitReason.FRONT_EXPIRY, "front month expires today: close before settlement"
    if x.dte < rules.dte_exit:
        return ExitReason.DTE_EXIT, f"DTE {x.dte} < {rules.dte_exit}"
    if rules.breakout_exit:
        why = _breakout(x)
        if why:
            return ExitReason.BREAKOUT, why
    if x.held_days >= rules.max_hold_days:
        return ExitReason.MAX_HOLD, f"held {x.held_days} days >= {rules.max_hold_days}"
    return None, ""


def expiring_today_holds(dte: int, last_bar: bool, reason: ExitReason | None) -> bool:
    """A position expiring today is not traded on its last bar (the venue settles it at the
    close), nor closed for 'DTE' or no reason earlier that day.  A two-expiry position is never
    left to the venue (it would settle the back month at intrinsic): FRONT_EXPIRY always trades."""
    if reason is ExitReason.FRONT_EXPIRY or (reason is ExitReason.TIME_EXIT and not last_bar):
        return False
    return dte <= 0 and (last_bar or reason in (None, ExitReason.DTE_EXIT))
