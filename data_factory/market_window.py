"""The market state a backtest builds, shared by every command that shows or writes chains.

``chain_window(market, start, end)`` gives the bars of the backtest's warm-up window and the
chain source over them, so ``--mode data chain`` and ``--mode data export`` print and write the
very quotes the engine trades (the previous close and VIX path are known on the first day).
``vix_note(market)`` says, truthfully for each source, what the run's VIX is.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.dto import DataError
from data_factory.base import ChainSource, MarketSource

WARMUP_DAYS = 10  # calendar days of bars before the first traded day (= run.WARMUP_SESSIONS * 2)


def chain_window(market: MarketSource, start: dt.date, end: dt.date, minutes: int = 5
                 ) -> tuple[pd.DataFrame, ChainSource]:
    """Bars of ``start - WARMUP_DAYS .. end`` and the chain source over them: the market state the
    backtest builds for a run starting at ``start`` (previous closes, VIX path), so ``data chain``
    and ``data export`` show and write the chains the engine trades.  Daily-only vendor files give
    their daily bars (end-of-day chains)."""
    warm_start = max(market.info.first_date, start - dt.timedelta(days=WARMUP_DAYS))
    if getattr(market, "is_daily", False):
        bars = market.daily_bars(warm_start, end)
    else:
        bars = market.intraday_bars(warm_start, end, minutes)
    if bars.empty:
        raise DataError(f"no bars between {start} and {end} in the {market.info.name} data; choose sessions "
                        f"between {market.info.first_date} and {market.info.last_date}")
    return bars, market.chains(bars)


def vix_note(market_or_info: object) -> str:
    """One true sentence about the run's VIX for the console and the run record, per source."""
    note = getattr(market_or_info, "vix_note", None)
    if callable(note):
        return str(note())
    info = getattr(market_or_info, "info", market_or_info)
    for text in getattr(info, "notes", ()):
        if str(text).startswith("VIX:"):
            return str(text)
    until = getattr(info, "vix_proxy_until", None)
    if getattr(info, "name", "") == "synthetic":
        return "VIX: simulated with the synthetic market (no real VIX)"
    if until:
        return f"VIX: GARCH proxy up to {until}, real CBOE VIX after"
    return "VIX: real CBOE VIX"
