"""Position sizing — pure arithmetic of one candidate, the book and the config.

    Q_static = quantity                                  (sizing off)
    Q_fuzzy  = floor(Q0 x F_t)                           with --use-fuzzy
    Q_fuzzy  = floor(Q0 x F_t x (1 - sigma*))            with --dynamic-sizing
    Q0       = min(fuzzy.max_contracts, floor(equity x position_size_pct / (max_loss x 100)))
    Q_alloc  = floor((equity x max_alloc - reserved) / (max_loss x 100))
    Q        = min(Q_static|Q_fuzzy, Q_alloc), then the risk check (``risk.manager``) applies
               Q_risk = floor(equity x max_account_risk_per_trade / (max_loss x 100)) and the
               Greek caps.

>>> from core.config import AppConfig
>>> size_contracts(420.0, 25_000.0, 0.0, float("nan"), float("nan"), AppConfig())
(1, {'max_loss_per_contract': 420.0, 'q_base': 1, 'q_alloc': 8}, '')
"""

from __future__ import annotations

import math

from core.config import AppConfig
from intelligence.fuzzy import fuzzy_size


def size_contracts(per_contract: float, equity: float, reserved: float, confidence: float, sigma_star: float,
                   cfg: AppConfig) -> tuple[int, dict[str, float], str]:
    """Contracts to open and the sizing figures; the reason is non-empty when the size is zero.

    ``per_contract`` is the max loss of one unit in dollars; ``reserved`` the buying power
    already held by open positions."""
    if per_contract <= 0:
        return 0, {}, "max loss per contract is zero: credit >= wing (bad quotes)"
    sizes: dict[str, float] = {"max_loss_per_contract": per_contract}
    if cfg.fuzzy.use_fuzzy or cfg.fuzzy.dynamic_sizing:
        sigma = sigma_star if cfg.fuzzy.dynamic_sizing else 0.0
        q0 = min(cfg.fuzzy.max_contracts, math.floor(equity * cfg.fuzzy.position_size_pct / per_contract + 1e-9))
        g_arr, q_arr = fuzzy_size(confidence, sigma, q0)
        g = float(g_arr)
        if not math.isfinite(g):
            return 0, sizes, "fuzzy confidence unavailable (warm-up)"
        q_base = int(q_arr)
        sizes.update(g=g, q0=q0)
    else:
        q_base = cfg.strategy.quantity
    q_alloc = math.floor((equity * cfg.strategy.max_alloc - reserved) / per_contract + 1e-9)
    sizes.update(q_base=q_base, q_alloc=q_alloc)
    qty = min(q_base, q_alloc)
    if qty >= 1:
        return qty, sizes, ""
    if q_base < 1:
        return 0, sizes, f"sizing gives {q_base} contracts (g {sizes.get('g', math.nan):.3f})"
    return 0, sizes, (f"max-alloc {cfg.strategy.max_alloc:g}: ${reserved:,.0f} already at risk, "
                      f"one more needs ${per_contract:,.0f}")
