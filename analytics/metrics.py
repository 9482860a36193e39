"""Performance metrics of a backtest: equity-curve statistics and trade statistics.

Conventions (every ratio is a fraction, not a percentage: 0.052 means 5.2%):

* **Daily returns.** The equity curve may be intraday; it is reduced to one close per
  session (the last mark of each local calendar date).  With daily closes ``E_1..E_n`` and
  the starting capital ``E_0 = start_cash``, ``r_t = E_t / E_{t-1} - 1`` for ``t = 1..n``
  (so the first session's return is measured from the starting cash).
* **CAGR** follows quantstats' trading-period convention, ``(E_n / E_0) ** (252 / n) - 1``
  with ``n`` the number of daily returns; it is *not* the calendar convention
  ``(E_n / E_0) ** (365.25 / days) - 1`` — the two differ by the ratio of calendar days to
  sessions (about 1.45 calendar days per session).
* **Sharpe** ``= mean(r) / std(r, ddof=1) * sqrt(252)`` with a zero risk-free rate.
* **Sortino** ``= mean(r) / DD * sqrt(252)`` with the downside deviation
  ``DD = sqrt(sum(min(r_t, 0)^2) / n)`` — the sum over losing days divided by the count of
  *all* days (Red Rock Capital's definition, as in ``quantstats.stats.sortino``).
* **Max drawdown** is measured on every equity point given (intraday troughs count), with
  ``start_cash`` as the first peak: ``DD$_t = E_t - max_{s<=t} E_s`` and
  ``DD%_t = E_t / max_{s<=t} E_s - 1``; both are reported as their minimum (<= 0).  On a
  daily curve ``max_drawdown_pct`` equals ``quantstats.stats.max_drawdown`` of the returns.
* **Trades.** A win has ``pnl > 0``, a loss ``pnl < 0``; a flat trade counts in ``trades``
  but in neither group.  ``win_rate = wins / trades``; ``profit_factor = sum(wins) /
  |sum(losses)|``; ``expectancy = mean(pnl)``; ``avg_win = mean(winning pnl)``,
  ``avg_loss = mean(losing pnl)`` (<= 0), ``win_loss_ratio = avg_win / |avg_loss|``.
* **Exposure** is the fraction of bars with an open position.
* **Fitness** ``= net_profit / |max_drawdown|`` in dollars (SPEC §7).  With no drawdown at
  all the denominator is 1% of the starting cash (``ZERO_DRAWDOWN_FLOOR``), so a
  drawdown-free run ranks high but stays finite; no trades and no drawdown give 0.

Values that are undefined (a ratio with a zero denominator, a Sharpe of fewer than two
days) are ``None`` so that the dict is valid JSON.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TRADING_DAYS = 252
ZERO_DRAWDOWN_FLOOR = 0.01  # fraction of start cash used as |max drawdown| when there was none

METRIC_KEYS: tuple[str, ...] = (
    "start_cash", "end_equity", "net_profit", "total_return", "cagr", "max_drawdown", "max_drawdown_pct",
    "sharpe", "sortino", "volatility", "days", "trades", "win_rate", "profit_factor", "expectancy",
    "avg_win", "avg_loss", "win_loss_ratio", "exposure", "fitness",
)


def _clean(x: float | int | None) -> float | int | None:
    """Python scalar, or None for NaN / inf / None."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    v = float(x)
    return v if math.isfinite(v) else None


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def daily_closes(equity: pd.Series) -> pd.Series:
    """Last equity mark of each local calendar date (index: naive midnight dates, name ``date``)."""
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise TypeError("equity must be indexed by a DatetimeIndex")
    eq = equity.astype(float).sort_index()
    days = eq.index.tz_localize(None) if eq.index.tz is not None else eq.index
    out = eq.groupby(days.normalize()).last()
    out.index.name = "date"
    return out


def daily_returns(equity: pd.Series, start_cash: float) -> pd.Series:
    """Session returns ``r_t = E_t / E_{t-1} - 1`` with ``E_0 = start_cash``."""
    closes = daily_closes(equity)
    prev = closes.shift(1)
    prev.iloc[:1] = start_cash
    return closes / prev - 1.0


def cagr(returns: pd.Series) -> float | None:
    """Trading-period CAGR ``prod(1 + r) ** (252 / n) - 1`` (quantstats' convention)."""
    n = int(returns.count())
    if n == 0:
        return None
    wealth = float(np.prod(1.0 + returns.to_numpy(float)))
    return None if wealth <= 0 else wealth ** (TRADING_DAYS / n) - 1.0


def sharpe_ratio(returns: pd.Series) -> float | None:
    """``mean(r) / std(r, ddof=1) * sqrt(252)``; None for fewer than two days or zero spread."""
    r = returns.to_numpy(float)
    if r.size < 2:
        return None
    sd = float(np.std(r, ddof=1))
    return None if sd == 0 else float(np.mean(r)) / sd * math.sqrt(TRADING_DAYS)


def sortino_ratio(returns: pd.Series) -> float | None:
    """``mean(r) / sqrt(sum(min(r, 0)^2) / n) * sqrt(252)``; None without losing days."""
    r = returns.to_numpy(float)
    if r.size == 0:
        return None
    downside = math.sqrt(float(np.sum(np.minimum(r, 0.0) ** 2)) / r.size)
    return None if downside == 0 else float(np.mean(r)) / downside * math.sqrt(TRADING_DAYS)


def max_drawdown(equity: pd.Series, start_cash: float) -> tuple[float, float]:
    """(dollars, fraction) of the deepest fall below the running peak; ``start_cash`` is the first peak."""
    e = np.concatenate(([float(start_cash)], equity.sort_index().to_numpy(float)))
    peak = np.maximum.accumulate(e)
    return float(np.min(e - peak)), float(np.min(e / peak - 1.0))


def exposure_from_trades(index: pd.DatetimeIndex, trades: pd.DataFrame) -> np.ndarray:
    """Open-position count at each bar: trades with ``entry_time <= t < exit_time``.

    ``count(t) = #{entry_time <= t} - #{exit_time <= t}`` by binary search (no loops).
    """
    if len(trades) == 0:
        return np.zeros(len(index), dtype=int)
    entries = np.sort(pd.DatetimeIndex(trades["entry_time"]).asi8)
    exits = np.sort(pd.DatetimeIndex(trades["exit_time"]).asi8)
    t = index.asi8
    return np.searchsorted(entries, t, side="right") - np.searchsorted(exits, t, side="right")


def trade_stats(pnl: np.ndarray) -> dict[str, float | int | None]:
    """Trade statistics of realised P&L per trade (dollars)."""
    pnl = np.asarray(pnl, float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    n = int(pnl.size)
    avg_win = float(wins.mean()) if wins.size else None
    avg_loss = float(losses.mean()) if losses.size else None
    return {
        "trades": n,
        "win_rate": _ratio(float(wins.size), float(n)),
        "profit_factor": _ratio(float(wins.sum()), abs(float(losses.sum()))),
        "expectancy": float(pnl.mean()) if n else None,
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "win_loss_ratio": _ratio(avg_win, abs(avg_loss)) if avg_win is not None and avg_loss is not None else None,
    }


def fitness(net_profit: float, max_drawdown_usd: float, start_cash: float) -> float:
    """``net_profit / |max_drawdown|``; with no drawdown, ``net_profit / (1% of start_cash)``."""
    den = abs(max_drawdown_usd)
    if den == 0:
        den = ZERO_DRAWDOWN_FLOOR * start_cash
    return net_profit / den if den > 0 else 0.0


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame,
    exposure: pd.Series | np.ndarray | None = None,
    start_cash: float = 25_000.0,
) -> dict[str, float | int | None]:
    """All metrics of one run, keys in ``METRIC_KEYS`` order, JSON-safe (None for undefined).

    ``equity``: account value marked to market, indexed by timestamp (intraday allowed).
    ``trades``: one row per closed trade with at least ``pnl`` (dollars, net of costs),
    ``entry_time`` and ``exit_time``.  ``exposure``: a boolean or position-count series per
    bar; when None it is rebuilt from the trades' entry/exit times on the equity index.
    """
    if start_cash <= 0:
        raise ValueError(f"start_cash must be positive, got {start_cash}")
    equity = equity.astype(float).sort_index()
    end_equity = float(equity.iloc[-1]) if len(equity) else float(start_cash)
    net = end_equity - start_cash
    rets = daily_returns(equity, start_cash) if len(equity) else pd.Series(dtype=float)
    dd_usd, dd_pct = max_drawdown(equity, start_cash)
    if exposure is None:
        exposure = exposure_from_trades(pd.DatetimeIndex(equity.index), trades)
    held = np.asarray(exposure, dtype=float)
    pnl = trades["pnl"].to_numpy(float) if len(trades) else np.zeros(0)
    vol = float(np.std(rets.to_numpy(float), ddof=1)) * math.sqrt(TRADING_DAYS) if len(rets) > 1 else None
    values: dict[str, float | int | None] = {
        "start_cash": float(start_cash),
        "end_equity": end_equity,
        "net_profit": net,
        "total_return": net / start_cash,
        "cagr": cagr(rets),
        "max_drawdown": dd_usd,
        "max_drawdown_pct": dd_pct,
        "sharpe": sharpe_ratio(rets),
        "sortino": sortino_ratio(rets),
        "volatility": vol,
        "days": int(len(rets)),
        **trade_stats(pnl),
        "exposure": float(np.mean(held > 0)) if held.size else None,
        "fitness": fitness(net, dd_usd, start_cash),
    }
    return {k: _clean(values[k]) for k in METRIC_KEYS}
