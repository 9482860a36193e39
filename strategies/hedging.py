"""Delta hedge with shares (SPEC exit 6) — pure.

When |book delta per contract| = |option delta + hedge shares| / (100 x contracts) exceeds
``hedge_threshold``, trade shares so the book's delta returns to ~0: target hedge =
−round(option delta), trade = target − current hedge.  With no option position left the
hedge is unwound.

>>> hedge_trade(option_delta=-37.4, hedge_shares=0.0, contracts=2, threshold=0.10)
(37, 'net delta -0.187 per contract beyond ±0.1')
>>> hedge_trade(option_delta=0.0, hedge_shares=12.0, contracts=0, threshold=0.10)
(-12, 'unwind hedge: no open position')
"""

from __future__ import annotations

from core.dto import CONTRACT_MULTIPLIER


def hedge_trade(option_delta: float, hedge_shares: float, contracts: int, threshold: float) -> tuple[int, str]:
    """Shares to trade (0 = nothing) and why."""
    if contracts == 0:
        return (-round(hedge_shares), "unwind hedge: no open position") if hedge_shares else (0, "")
    per_contract = (option_delta + hedge_shares) / (CONTRACT_MULTIPLIER * contracts)
    if abs(per_contract) <= threshold:
        return 0, ""
    trade = -round(option_delta) - hedge_shares
    return round(trade), f"net delta {per_contract:+.3f} per contract beyond ±{threshold:g}"
