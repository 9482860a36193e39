"""Factor attribution: which entry factors separated winning from losing trades.

For each factor j with values x at entry: ``ΔF_j = mean(x | pnl > 0) − mean(x | pnl < 0)`` and a
percentile bootstrap 95% interval of ΔF (winners and losers resampled independently with a
seeded Generator).  Flat trades (pnl == 0) belong to neither group.

>>> import pandas as pd
>>> t = pd.DataFrame({"pnl": [10.0, 5.0, -8.0, -1.0], "entry_mu_rsi": [0.9, 0.7, 0.2, 0.4]})
>>> round(float(factor_attribution(t, n_boot=200, seed=7)["delta_f"].iloc[0]), 6)
0.5
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ATTRIBUTION_COLUMNS = ("factor", "mean_win", "mean_lose", "delta_f", "ci_low", "ci_high", "n_win", "n_lose")


def _bootstrap_delta(win: np.ndarray, lose: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    if len(win) < 2 or len(lose) < 2:
        return float("nan"), float("nan")
    wi = rng.integers(0, len(win), size=(n_boot, len(win)))
    li = rng.integers(0, len(lose), size=(n_boot, len(lose)))
    deltas = win[wi].mean(axis=1) - lose[li].mean(axis=1)
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return float(lo), float(hi)


def factor_attribution(trades: pd.DataFrame, prefix: str = "entry_", n_boot: int = 2000, *,
                       seed: int) -> pd.DataFrame:
    """One row per ``entry_*`` column of ``trades`` (see the module docstring); ``seed``: the run's seed."""
    rng = np.random.default_rng(seed)
    rows = []
    if trades.empty or "pnl" not in trades:
        return pd.DataFrame(columns=list(ATTRIBUTION_COLUMNS))
    pnl = trades["pnl"].to_numpy(float)
    for col in [c for c in trades.columns if c.startswith(prefix)]:
        x = pd.to_numeric(trades[col], errors="coerce").to_numpy(float)
        ok = np.isfinite(x)
        if not ok.any():  # not a numeric factor (e.g. entry_time)
            continue
        win, lose = x[ok & (pnl > 0)], x[ok & (pnl < 0)]
        mean_win = float(win.mean()) if len(win) else float("nan")
        mean_lose = float(lose.mean()) if len(lose) else float("nan")
        lo, hi = _bootstrap_delta(win, lose, n_boot, rng)
        rows.append((col[len(prefix):], mean_win, mean_lose, mean_win - mean_lose, lo, hi, len(win), len(lose)))
    return pd.DataFrame(rows, columns=list(ATTRIBUTION_COLUMNS))
