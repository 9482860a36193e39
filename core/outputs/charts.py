"""Charts of a run (matplotlib, headless Agg backend).

Every ``*_png`` function draws one figure sized for an A4 page column (7.2 in wide) and
returns it as PNG bytes, or ``None`` when the data would make an empty chart; the caller
(``core.outputs.pdf``) then writes a sentence instead.  Units are in every axis label:
equity and P&L in dollars, returns and drawdowns in percent, Greeks in the book units of
``risk.greeks`` (delta in shares, gamma in shares per $1, vega in $ per volatility point,
theta in $ per calendar day).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

WIDTH_IN = 7.2
DPI = 150
BLUE, RED, GREEN, GREY = "#1f4e79", "#c0392b", "#2e7d32", "#7f8c8d"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
GREEK_LABELS = {"delta": "delta (shares)", "gamma": "gamma (shares/$)", "vega": "vega ($/vol pt)",
                "theta": "theta ($/day)"}

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
                     "ytick.labelsize": 7, "legend.fontsize": 7})


def png_bytes(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes (fixed metadata, so equal inputs give equal bytes) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _time_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _local_times(timestamps: pd.Series) -> pd.DatetimeIndex:
    """ISO timestamps (mixed UTC offsets across DST) as naive New York wall-clock times."""
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)).tz_convert("America/New_York")
    return ts.tz_localize(None)


BUY_HOLD_COLUMN = "buy_hold_equity"


def equity_figure(equity: pd.DataFrame, title: str = "", events: pd.DataFrame | None = None) -> Figure:
    """Equity in dollars (top, with buy-and-hold of the underlying beside it when ``equity`` has a
    ``buy_hold_equity`` column) and the strategy's drawdown ``E_t / max_{s<=t} E_s - 1`` in percent (bottom).
    ``events`` (``date, kind``: FOMC / CPI days) are drawn as faint vertical lines on both panels."""
    ts = _local_times(equity["timestamp"])
    eq = equity["equity"].to_numpy(float)
    dd = (eq / np.maximum.accumulate(eq) - 1.0) * 100.0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(WIDTH_IN, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(ts, eq, color=BLUE, lw=1.0, label="strategy")
    if BUY_HOLD_COLUMN in equity and np.isfinite(equity[BUY_HOLD_COLUMN].to_numpy(float)).any():
        ax1.plot(ts, equity[BUY_HOLD_COLUMN].to_numpy(float), color=GREY, lw=0.9, alpha=0.9,
                 label="buy and hold (same cash in the underlying)")
        ax1.legend(loc="best")
    ax1.set_ylabel("equity ($)")
    ax1.set_title(title or "Equity", loc="left")
    ax1.grid(alpha=0.3)
    ax1.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax2.fill_between(ts, dd, 0, color=RED, alpha=0.5, lw=0)
    ax2.set_ylabel("strategy\ndrawdown (%)")
    ax2.set_xlabel("date (New York)")
    ax2.set_ylim(min(float(dd.min()) * 1.1, -0.5), 0.0)
    ax2.grid(alpha=0.3)
    if events is not None and len(events) and len(ts):
        colours = {"fomc": "#8e44ad", "cpi": "#d35400"}
        for kind in sorted(set(events["kind"])):
            days = pd.to_datetime(events.loc[events["kind"] == kind, "date"])
            days = days[(days >= ts[0].normalize()) & (days <= ts[-1])]
            for k, d in enumerate(days):
                for ax in (ax1, ax2):
                    ax.axvline(d + pd.Timedelta(hours=9, minutes=30), color=colours.get(kind, GREY), lw=0.6,
                               alpha=0.5, ls=":", label=f"{kind.upper()} day" if (k == 0 and ax is ax1) else None)
        ax1.legend(loc="best")
    _time_axis(ax2)
    fig.tight_layout()
    return fig


def equity_chart(equity: pd.DataFrame, path: Path, title: str = "", events: pd.DataFrame | None = None) -> Path:
    """Equity (top) and drawdown in percent (bottom) against time, saved as a PNG at ``path``."""
    Path(path).write_bytes(png_bytes(equity_figure(equity, title, events)))
    return Path(path)


def equity_drawdown_png(equity: pd.DataFrame, title: str = "") -> bytes | None:
    """The equity/drawdown figure as PNG bytes; None with fewer than two bars."""
    if len(equity) < 2:
        return None
    return png_bytes(equity_figure(equity, title or "Equity at every bar close and drawdown from the running peak"))


def monthly_returns_png(table: pd.DataFrame) -> bytes | None:
    """Heatmap of monthly returns: rows are years, columns Jan..Dec, cells in percent."""
    values = table.reindex(columns=range(1, 13)).to_numpy(float) * 100.0
    if not np.isfinite(values).any():
        return None
    span = max(float(np.nanmax(np.abs(values))), 0.1)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.5 + 0.3 * len(table)))
    img = ax.imshow(values, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    ax.set_xlabel("month")
    ax.set_ylabel("year")
    for (row, col), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(col, row, f"{v:+.1f}%", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 * span else "black")
    fig.colorbar(img, ax=ax, label="return (%)", fraction=0.04, pad=0.02)
    ax.set_title("Monthly returns from daily equity closes")
    fig.tight_layout()
    return png_bytes(fig)


def histogram_png(values: np.ndarray, xlabel: str, title: str, bins: int = 30) -> bytes | None:
    """Histogram of the finite ``values`` with the mean and zero marked; None when empty."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.8))
    width = float(np.ptp(x)) / min(bins, max(5, x.size)) or 1.0
    edges = np.arange(np.floor(x.min() / width), np.ceil(x.max() / width) + 1.0) * width  # 0 is a bin edge
    if edges.size < 2:
        edges = np.array([edges[0] - width, edges[0] + width])
    ax.hist(x[x < 0], bins=edges.tolist(), color=RED, alpha=0.75, label="loss")
    ax.hist(x[x >= 0], bins=edges.tolist(), color=GREEN, alpha=0.75, label="gain or flat")
    ax.axvline(float(x.mean()), color="black", ls="--", lw=1, label=f"mean {x.mean():,.2f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return png_bytes(fig)


def _bins(x: np.ndarray, most: int = 15) -> list[float] | int:
    """One bin per integer for integer data spanning at most ``2 * most`` values, else ``most`` bins."""
    if x.size and np.all(x == np.round(x)) and np.ptp(x) <= 2 * most:
        return np.arange(x.min() - 0.5, x.max() + 1.5).tolist()
    return most


def entry_holding_png(dte: np.ndarray, credit_width: np.ndarray, held_days: np.ndarray) -> bytes | None:
    """Three histograms: DTE at entry (days), credit / width (%), days held (calendar days)."""
    if len(dte) == 0:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 2.6))
    panels = ((dte, "DTE at entry (calendar days)", BLUE), (np.asarray(credit_width) * 100.0, "credit / width (%)",
              GREEN), (held_days, "days held (calendar days)", GREY))
    for ax, (data, label, color) in zip(axes, panels, strict=True):
        x = np.asarray(data, float)
        x = x[np.isfinite(x)]
        ax.hist(x, bins=_bins(x), color=color, alpha=0.8, edgecolor="white", linewidth=0.5)
        ax.set_xlabel(label)
        ax.set_ylabel("trades")
        ax.grid(alpha=0.3)
    fig.suptitle("Entry and holding, one count per position", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def category_png(stats: pd.DataFrame, title: str) -> bytes | None:
    """Two bar panels per category (index): trade count and total P&L in dollars."""
    if stats.empty:
        return None
    labels = [str(i) for i in stats.index]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(WIDTH_IN, 0.9 + 0.35 * max(len(labels), 3)))
    pos = np.arange(len(labels))
    ax1.barh(pos, stats["trades"].to_numpy(float), color=BLUE)
    ax1.set_yticks(pos, labels)
    ax1.set_xlabel("trades")
    pnl = stats["total_pnl"].to_numpy(float)
    ax2.barh(pos, pnl, color=np.where(pnl < 0, RED, GREEN))
    ax2.set_yticks(pos, [])
    ax2.axvline(0.0, color="black", lw=0.8)
    ax2.set_xlabel("total P&L ($)")
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def greeks_png(greeks: pd.DataFrame) -> bytes | None:
    """Portfolio delta, gamma, vega and theta per bar, one panel each; None when all are zero."""
    cols = [c for c in GREEK_LABELS if c in greeks.columns]
    if len(greeks) < 2 or not cols or not np.any(greeks[cols].to_numpy(float)):
        return None
    ts = _local_times(greeks["timestamp"])
    fig, axes = plt.subplots(len(cols), 1, figsize=(WIDTH_IN, 1.35 * len(cols) + 0.6), sharex=True)
    for ax, col in zip(np.atleast_1d(axes), cols, strict=True):
        ax.plot(ts, greeks[col].to_numpy(float), color=BLUE, lw=0.7)
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_ylabel(GREEK_LABELS[col])
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel("date (New York)")
    _time_axis(np.atleast_1d(axes)[-1])
    fig.suptitle("Portfolio Greeks at each bar", fontsize=9)
    fig.align_ylabels(axes)
    fig.tight_layout()
    return png_bytes(fig)


def factor_png(factors: pd.DataFrame) -> bytes | None:
    """``delta_f = mean_win - mean_lose`` per factor in units of its CI half-width
    ``h = (ci_high - ci_low) / 2``, with the CI scaled the same way; factors have different
    units, so only this ratio is comparable across them (the CI excludes 0 when |bar| beats
    its whisker).  Factors sorted by |delta_f / h|; darker bars have a CI that excludes 0."""
    df = factors.dropna(subset=["delta_f", "ci_low", "ci_high"])
    half = (df["ci_high"] - df["ci_low"]).to_numpy(float) / 2.0
    df = df[half > 0]
    if df.empty:
        return None
    half = (df["ci_high"] - df["ci_low"]).to_numpy(float) / 2.0
    z = df["delta_f"].to_numpy(float) / half
    order = np.argsort(-np.abs(z), kind="stable")
    lo, hi = (df["ci_low"].to_numpy(float) / half)[order], (df["ci_high"].to_numpy(float) / half)[order]
    z = z[order]
    excludes_zero = (lo > 0) | (hi < 0)
    pos = np.arange(len(z))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.0 + 0.2 * len(z)))
    shade = np.where(z < 0, np.where(excludes_zero, RED, "#e6a9a2"), np.where(excludes_zero, GREEN, "#a9d3ab"))
    ax.barh(pos, z, color=shade)
    ax.errorbar(z, pos, xerr=np.vstack([z - lo, hi - z]), fmt="none", ecolor="black", capsize=2, lw=0.7)
    ax.set_yticks(pos, [str(f) for f in df["factor"].to_numpy()[order]])
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("delta_f / CI half-width (winners' mean minus losers' mean at entry, scaled)")
    ax.set_title("Factor attribution: effect relative to its confidence interval")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return png_bytes(fig)


def daily_pnl_png(pnl: np.ndarray, var_lines: dict[str, float]) -> bytes | None:
    """Histogram of daily P&L in dollars with each VaR/CVaR (a positive loss) marked at ``-value``;
    None if P&L never moved."""
    x = np.asarray(pnl, float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.8))
    ax.hist(x, bins=min(40, max(5, x.size // 3)), color=GREY, alpha=0.8)
    styles = ("--", ":", "-.", (0, (5, 1)))
    for k, (name, value) in enumerate(var_lines.items()):
        ax.axvline(-value, color=RED if "cvar" in name.lower() else BLUE, ls=styles[k % 4], lw=1.1,
                   label=f"{name}: loss of ${value:,.0f}")
    ax.set_xlabel("daily P&L ($), change of the daily equity close")
    ax.set_ylabel("sessions")
    ax.set_title("Distribution of daily P&L")
    ax.grid(alpha=0.3)
    if var_lines:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return png_bytes(fig)
