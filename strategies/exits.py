"""Exit decision tree for an open short-premium position — pure, checked on every bar.

Priority (SPEC §5), first match wins:

1. profit target: mark debit <= credit x (1 - profit_pct)
2. stop loss: mark debit - credit >= loss_multiple x credit
3. regime CRASH_MODE (when the regime gate is on): emergency close
4. DTE below ``dte_exit`` calendar days: close
5. Bollinger breakout through a short strike (close beyond a band and beyond the strike)
6. (delta hedge — handled by the hedger, not an exit)
7. max hold days (calendar days since entry) reached: close
"""

from __future__ import annotations

from dataclasses import dataclass

from core.dto import ExitReason, Regime


@dataclass(frozen=True, slots=True)
class ExitInputs:
    credit: float  # per share at entry
    mark_debit: float  # per share to close at mid now
    dte: int  # calendar days to expiry
    held_days: int  # calendar days since entry
    spot: float
    short_put: float
    short_call: float
    regime: Regime | None = None
    bb_upper: float = float("nan")
    bb_lower: float = float("nan")


@dataclass(frozen=True, slots=True)
class ExitRules:
    profit_pct: float = 0.50
    loss_multiple: float = 1.5
    max_hold_days: int = 14
    dte_exit: int = 7
    crash_exit: bool = True
    breakout_exit: bool = True
    profit_target: bool = True


def exit_reason(x: ExitInputs, rules: ExitRules) -> tuple[ExitReason | None, str]:
    """The first exit rule that fires, with a human-readable reason; (None, "") to hold."""
    target = x.credit * (1.0 - rules.profit_pct)
    if rules.profit_target and x.mark_debit <= target + 1e-12:
        return ExitReason.PROFIT_TARGET, f"mark {x.mark_debit:.3f} <= target {target:.3f}"
    loss = x.mark_debit - x.credit
    if loss >= rules.loss_multiple * x.credit - 1e-12:
        return ExitReason.STOP_LOSS, f"loss {loss:.3f} >= {rules.loss_multiple:g} x credit {x.credit:.3f}"
    if rules.crash_exit and x.regime is Regime.CRASH_MODE:
        return ExitReason.CRASH_MODE, "regime CRASH_MODE"
    if x.dte < rules.dte_exit:
        return ExitReason.DTE_EXIT, f"DTE {x.dte} < {rules.dte_exit}"
    if rules.breakout_exit:
        if x.spot > x.bb_upper and x.spot > x.short_call:
            return ExitReason.BREAKOUT, f"close {x.spot:.2f} above upper band and short call {x.short_call:g}"
        if x.spot < x.bb_lower and x.spot < x.short_put:
            return ExitReason.BREAKOUT, f"close {x.spot:.2f} below lower band and short put {x.short_put:g}"
    if x.held_days >= rules.max_hold_days:
        return ExitReason.MAX_HOLD, f"held {x.held_days} days >= {rules.max_hold_days}"
    return None, ""
