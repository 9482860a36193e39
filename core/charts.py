"""Charts of a run (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def equity_chart(equity: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Equity (top) and drawdown in percent (bottom) against time."""
    ts = pd.to_datetime(equity["timestamp"], utc=True)
    eq = equity["equity"].astype(float)
    dd = (eq / eq.cummax() - 1.0) * 100.0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(ts, eq, color="#1f4e79", lw=1.2)
    ax1.set_ylabel("equity ($)")
    ax1.set_title(title or "Equity")
    ax1.grid(alpha=0.3)
    ax2.fill_between(ts, dd, 0, color="#c0392b", alpha=0.5)
    ax2.set_ylabel("drawdown (%)")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
