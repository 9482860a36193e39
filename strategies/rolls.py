"""Rolls and adjustments (SPEC §5 exits 4 and 5): close a position and open its replacement
as one ``Action.ROLL`` decision; the replacement carries ``rolled_from`` (the old position's
id) in its scores, which the driver stores with the new position, so the two are linked.

* **DTE roll** (``exits.on_dte = "roll"``): when the front expiry is fewer than ``dte_exit``
  days away, reopen the *same structure* on the next eligible expiry — the structure's entry
  window (its selector profile or ``strategy.dte_min..dte_max``), strictly after the expiry
  being left — with the entry's strike rules and checks, at the same size.
* **Breakout adjust** (``exits.on_breakout = "adjust"``): when the close breaks the Bollinger
  band through a short strike, the tested side (calls above, puts below) is re-selected by its
  strike rules at the current price on the *same* expiry — away from the tested strike — while
  the untested legs keep their strikes.  The venue closes whole positions, so the untested legs
  are closed and reopened at the same strikes (their spread and fees are paid; a venue with
  partial closes would save that).  The adjusted position needs a credit (or, for a debit
  structure, a debit) but not the entry's credit/width minimum: it is a repair, not an entry.
  At most one adjustment a session: a position opened or adjusted today is held through a
  further breakout until the next session (an at-the-money calendar re-centred on a breakout
  would otherwise be re-tested on the very next bar).

When no replacement passes, the decision is a plain EXIT with the reason and why no roll was
possible.  A roll is not re-sized and not re-gated (it keeps the position's size; the venue
still checks buying power).
"""

from __future__ import annotations

from dataclasses import replace

from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    Action,
    BookPosition,
    ExitReason,
    MarketSnapshot,
    OptionRight,
    ReasonCode,
    TradeDecision,
)
from strategies.entry import choose_candidate, window_slices
from strategies.selector import Plan


def tested_right(spot: float, short_calls: tuple[float, ...], short_puts: tuple[float, ...]) -> OptionRight:
    """The side a breakout went through: calls when above the lowest short call, else puts."""
    if short_calls and spot > min(short_calls):
        return OptionRight.CALL
    return OptionRight.PUT


def roll_decision(snap: MarketSnapshot, bp: BookPosition, reason: ExitReason, why: str, cfg: AppConfig,
                  adjust: bool) -> TradeDecision:
    """ROLL (close + open, linked) or, when nothing qualifies, EXIT with the reason."""
    pos = bp.position
    plan = Plan.of(pos.structure, cfg)
    spec = plan.spec
    fixed = None
    if adjust:
        right = tested_right(snap.spot, pos.short_strikes(OptionRight.CALL), pos.short_strikes(OptionRight.PUT))
        fixed = {leg.role: leg.contract.strike for leg in pos.legs if leg.contract.right is not right}
        plan = replace(plan, min_credit_ratio=0.0)
        slices = [snap.chain.expiry_slice(pos.front_expiry)] if pos.front_expiry in snap.chain.expiries() else []
        code, label = ReasonCode.ADJUST, f"adjust {right.name.lower()} side"
    else:
        slices = [sl for sl in window_slices(snap, cfg, plan) if sl.expiry > pos.front_expiry]
        code, label = ReasonCode.ROLL, "roll"
    cand, reasons = choose_candidate(spec, slices, snap.spot, snap.ts, cfg, plan, snap.chain, fixed)
    if cand is None:
        return TradeDecision(Action.EXIT, pos.structure, qty=pos.qty,
                             reasons=(f"{why}; no {label}: {'; '.join(reasons) or 'no candidate'}",),
                             codes=(ReasonCode.EXIT,), exit_reason=reason, position_id=pos.position_id)
    scores: dict[str, object] = {"rolled_from": pos.position_id, "credit_ratio": cand.credit_ratio,
                                 "breach_prob": cand.breach_probability,
                                 "max_loss_per_contract": cand.max_loss * CONTRACT_MULTIPLIER,
                                 "unit_delta": cand.net_greek("delta"), "q_final": pos.qty}
    text = f"{why}; {label}: {cand.describe()} credit {cand.credit_mid:.2f} x{pos.qty}"
    limit = 0.0 if not spec.debit and not spec.wing_defined else None  # a broken wing must fill for a credit
    return TradeDecision(Action.ROLL, pos.structure, cand.order_legs(cfg.strategy.underlying), pos.qty, (text,),
                         (code,), scores, exit_reason=reason, position_id=pos.position_id, limit=limit)
