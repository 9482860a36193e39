"""Build the market source a run asks for, and resolve its date range."""

from __future__ import annotations

import datetime as dt

from core.config import AppConfig
from core.dto import ConfigError, DataError
from data_factory.base import MarketSource
from data_factory.market_window import WARMUP_DAYS, chain_window, vix_note

__all__ = ["WARMUP_DAYS", "build_market", "chain_window", "resolve_range", "vix_note"]


def build_market(cfg: AppConfig) -> MarketSource:
    """The configured source: embedded (arch data), synthetic (seeded model) or vendor files."""
    d = cfg.data
    from data_factory.surface import SurfaceParams

    steps, div_yield, max_lag = d.for_underlying(cfg.strategy.underlying)
    surface = SurfaceParams(rate=d.rate, dividend_yield=div_yield)
    if d.source == "embedded":
        from data_factory.embedded import EmbeddedMarket

        return EmbeddedMarket(seed=cfg.run.seed, underlying=cfg.strategy.underlying, surface=surface,
                              strike_steps=steps)
    if d.source == "synthetic":
        from data_factory.synthetic import SyntheticMarket

        return SyntheticMarket(d.synthetic_start, d.synthetic_end, seed=cfg.run.seed,
                               underlying=cfg.strategy.underlying, surface=surface)
    if d.source == "files" and d.spot_data:
        from data_factory.vendor import FilesMarket

        return FilesMarket(d.spot_data, d.options_data, underlying=cfg.strategy.underlying, rate=d.rate,
                           div_yield=div_yield, vix_path=d.vix_data, max_lag_seconds=max_lag,
                           max_stale_fraction=d.chain_max_stale_fraction)
    raise ConfigError(f"--data-source {d.source!r}: choose embedded, synthetic or files")


def resolve_range(cfg: AppConfig, market: MarketSource) -> tuple[dt.date, dt.date]:
    """``--bt-start/--bt-end`` or the last full calendar year of the source (SPEC §1)."""
    first, last = market.info.first_date, market.info.last_date
    end = cfg.backtest.end or last
    if cfg.backtest.start is not None:
        start = cfg.backtest.start
    else:
        year = last.year if last >= dt.date(last.year, 12, 28) else last.year - 1
        start = max(dt.date(year, 1, 1), first)
        end = cfg.backtest.end or min(dt.date(year, 12, 31), last)
        if start >= end:  # less than a full calendar year of data: use all of it
            start, end = first, cfg.backtest.end or last
    for flag, day in (("--bt-start", start), ("--bt-end", end)):
        if not first <= day <= last:
            raise DataError(f"{flag} {day} is outside the {market.info.name} data ({first} to {last}); "
                            "pick a date inside that range")
    if start >= end:
        raise ConfigError(f"--bt-start {start} must be before --bt-end {end}")
    return start, end
