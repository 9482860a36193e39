"""Backtest orchestration: market -> features (once) -> Backtrader clock -> driver -> results."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.backtest.driver import BacktestDriver
from core.backtest.engine import run_clock
from core.backtest.market import build_market, resolve_range
from core.config import AppConfig
from core.dto import DataError, FeatureSet
from data_factory.base import ChainSource, MarketSource, SourceInfo

WARMUP_SESSIONS = 5  # intraday history before the first traded bar (indicator warm-up)
DAILY_HISTORY_DAYS = 400  # calendar days of daily bars/VIX for IV rank and regime


@dataclass(slots=True)
class BacktestInputs:
    info: SourceInfo
    start: dt.date
    end: dt.date
    bars: pd.DataFrame  # base bars incl. warm-up
    daily: pd.DataFrame
    vix: pd.DataFrame
    chains: ChainSource
    first_bar: int  # first traded bar in ``bars``
    bars_1m: pd.DataFrame | None = None  # only when the MTF consensus needs 1-minute bars
    qqq_daily: pd.DataFrame | None = None  # only for the SPY/QQQ ratio gate


@dataclass(slots=True)
class BacktestResult:
    cfg: AppConfig
    inputs: BacktestInputs
    driver: BacktestDriver
    features: FeatureSet
    seconds: float

    @property
    def traded_index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.inputs.bars.index[self.inputs.first_bar:])


def ex_dividend_schedule(daily: pd.DataFrame, dividend_yield: float) -> dict[dt.date, float]:
    """SPY-like quarterly ex-dividend dates (third Friday of Mar/Jun/Sep/Dec, previous session
    when that is a holiday) with amount = previous close x yield / 4."""
    from data_factory.listing import previous_session_on_or_before, third_friday

    out: dict[dt.date, float] = {}
    if daily.empty:
        return out
    days = pd.DatetimeIndex(daily.index)
    close = daily["close"].to_numpy(float)
    for year in range(days[0].year, days[-1].year + 1):
        for month in (3, 6, 9, 12):
            ex = previous_session_on_or_before(third_friday(year, month))
            pos = int(np.searchsorted(days, pd.Timestamp(ex))) - 1
            if 0 <= pos < len(close):
                out[ex] = round(float(close[pos]) * dividend_yield / 4.0, 4)
    return out


def load_inputs(cfg: AppConfig, market: MarketSource | None = None) -> BacktestInputs:
    market = market or build_market(cfg)
    start, end = resolve_range(cfg, market)
    info = market.info
    warm_start = max(info.first_date, start - dt.timedelta(days=WARMUP_SESSIONS * 2))
    bars = market.intraday_bars(warm_start, end, cfg.backtest.bar_minutes)
    if bars.empty:
        raise DataError(f"no {cfg.backtest.bar_minutes}-minute bars between {start} and {end} in {info.name} data")
    idx = pd.DatetimeIndex(bars.index)
    local_dates = idx.tz_localize(None).normalize() if idx.tz is not None else idx.normalize()
    first_bar = int(np.searchsorted(local_dates, pd.Timestamp(start)))
    if cfg.backtest.samples:
        first_bar = max(first_bar, len(bars) - cfg.backtest.samples)
    if first_bar >= len(bars):
        raise DataError(f"no bars on or after --bt-start {start} in the {info.name} data")
    hist_start = max(info.first_date, start - dt.timedelta(days=DAILY_HISTORY_DAYS))
    daily = market.daily_bars(hist_start, end)
    vix = market.vix(hist_start, end)
    bars_1m = None
    if cfg.mtf.use_mtf and 1 in cfg.mtf.timeframes:
        try:
            bars_1m = market.intraday_bars(warm_start, end, 1)
        except DataError:
            bars_1m = None  # the 1-minute timeframe is then unavailable, with its reason in the log
    qqq_fn = getattr(market, "qqq_daily", None)
    qqq = qqq_fn(hist_start, end) if cfg.gates.use_ratio_bias and qqq_fn is not None else None
    chains = market.chains(bars)  # built first: reading vendor quotes may add notes (dropped quotes) to info
    return BacktestInputs(market.info, start, end, bars, daily, vix, chains, first_bar, bars_1m, qqq)


def build_features(cfg: AppConfig, inputs: BacktestInputs) -> FeatureSet:
    """Every feature the decision core reads, computed once over all bars (causal)."""
    from intelligence.pipeline import feature_set

    forecast = neural_forecast(cfg, inputs) if cfg.forecaster.use_neural else None
    return feature_set(cfg, inputs.bars, inputs.daily, inputs.vix, intraday_vix(inputs), inputs.bars_1m,
                          forecast, inputs.qqq_daily)


def neural_forecast(cfg: AppConfig, inputs: BacktestInputs) -> dict[str, np.ndarray]:
    """The forecaster's daily ForecastState mapped onto the bars causally: the forecast made at
    session d's close (bars up to d) is used on every bar of the next session."""
    from core.modes.train import load_bundle, resolve_model_path
    from intelligence.forecaster.infer import batch_forecast

    model = resolve_model_path(cfg.forecaster.model)
    if not model.is_file():
        raise DataError(f"--model {cfg.forecaster.model}: checkpoint not found; train one with --mode train "
                        "or drop --use-neural")
    fa = batch_forecast(load_bundle(model), inputs.daily)
    idx = pd.DatetimeIndex(inputs.bars.index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    pos = np.searchsorted(pd.DatetimeIndex(inputs.daily.index), days, side="left") - 1
    out = {}
    for name in ("prob_bull", "prob_bear", "prob_neutral", "confidence"):
        values = np.asarray(getattr(fa, name), float)
        out[name] = np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)
    return out


def intraday_vix(inputs: BacktestInputs) -> np.ndarray:
    """VIX as the chain model sees it at each bar (causal); the previous session's close
    when the chain source has no intraday VIX model (vendor files)."""
    path = getattr(inputs.chains, "spot_vix_path", None)
    if path is not None:
        return path(pd.DatetimeIndex(inputs.bars.index))[1]
    idx = pd.DatetimeIndex(inputs.bars.index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    vix_days = pd.DatetimeIndex(inputs.vix.index)
    pos = np.searchsorted(vix_days, days, side="left") - 1
    values = inputs.vix["vix"].to_numpy(float)
    return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)


def run_backtest(cfg: AppConfig, market: MarketSource | None = None, progress: bool | None = None,
                 inputs: BacktestInputs | None = None, features: FeatureSet | None = None
                 ) -> BacktestResult:
    """Run one backtest; ``inputs`` / ``features`` may be shared across runs (optimizer, stress)."""
    t0 = time.perf_counter()
    inputs = inputs or load_inputs(cfg, market)
    features = features if features is not None else build_features(cfg, inputs)
    driver = BacktestDriver(cfg, inputs.bars, features, inputs.chains, inputs.first_bar,
                            ex_dividend_schedule(inputs.daily, cfg.data.dividend_yield))
    show = cfg.run.progress if progress is None else progress
    bar = _progress_bar(len(inputs.bars), show)
    run_clock(inputs.bars, driver.on_bar, (lambda i: bar.update(i - bar.n)) if bar is not None else None)
    if bar is not None:
        bar.update(len(inputs.bars) - bar.n)
        bar.close()
    driver.finish()
    return BacktestResult(cfg, inputs, driver, features, time.perf_counter() - t0)


def _progress_bar(total: int, show: bool):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="bar", desc="backtest", leave=False, mininterval=0.5)
