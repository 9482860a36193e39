"""Constructed markets: a price path you specify, a constant (or given) VIX, modelled chains.

Used for golden scenarios with closed-form answers (flat market, gaps, assignment) and by
stress replays.  ``flat_bars`` and ``path_bars`` build close-labelled 5-minute bars on the
NYSE calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from data_factory.base import DEFAULTS, NY_TZ, ChainSource, SourceInfo
from data_factory.calendar import bar_grid, sessions


def path_bars(start: dt.date, end: dt.date, price_at: Callable[[pd.DatetimeIndex], np.ndarray],
              minutes: int = 5, volume: float = 10_000.0) -> pd.DataFrame:
    """Bars whose close is ``price_at(close_labels)``; open = previous close (first: own close)."""
    days = sessions(start, end)
    close_ns, _counts = bar_grid(days, minutes)
    idx = pd.DatetimeIndex(pd.to_datetime(close_ns, utc=True)).tz_convert(NY_TZ)
    idx.name = "ts"
    close = np.asarray(price_at(idx), float)
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame({"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close),
                          "close": close, "volume": np.full(len(idx), volume)}, index=idx)
    return frame


def flat_bars(start: dt.date, end: dt.date, price: float = 100.0, minutes: int = 5) -> pd.DataFrame:
    return path_bars(start, end, lambda idx: np.full(len(idx), price), minutes)


class ScenarioMarket:
    """``MarketSource`` over given intraday bars and a VIX level (constant or a daily frame)."""

    def __init__(self, bars: pd.DataFrame, vix: float | pd.DataFrame = 15.0,
                 underlying: str = DEFAULTS.strategy.underlying, history_days: int = 400) -> None:
        self._bars = bars
        first = pd.DatetimeIndex(bars.index)[0].tz_convert(NY_TZ).date()
        last = pd.DatetimeIndex(bars.index)[-1].tz_convert(NY_TZ).date()
        self.underlying = underlying
        if isinstance(vix, pd.DataFrame):
            self._vix = vix
        else:
            days = sessions(first - dt.timedelta(days=history_days), last)
            self._vix = pd.DataFrame({"vix": np.full(len(days), float(vix)), "is_proxy": False},
                                     index=pd.DatetimeIndex(days, name="date"))
        self.info = SourceInfo("scenario", underlying, first, last, intraday_synthetic=True, vix_proxy_until=None,
                               chains_modelled=True, notes=("constructed scenario market",))

    def _daily_all(self) -> pd.DataFrame:
        idx = pd.DatetimeIndex(self._bars.index).tz_convert(NY_TZ)
        day = idx.tz_localize(None).normalize()
        g = self._bars.groupby(day)
        out = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                            "close": g["close"].last(), "volume": g["volume"].sum()})
        out.index.name = "date"
        return out

    def daily_bars(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        d = self._daily_all()
        return d.loc[pd.Timestamp(start or d.index[0]):pd.Timestamp(end or d.index[-1])]

    def intraday_bars(self, start: dt.date, end: dt.date, minutes: int = 5) -> pd.DataFrame:
        idx = pd.DatetimeIndex(self._bars.index).tz_convert(NY_TZ)
        day = idx.tz_localize(None).normalize()
        mask = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))
        bars = self._bars.loc[mask]
        if minutes == 5:
            return bars
        from data_factory.bars import resample_bars

        return resample_bars(bars, minutes)

    def vix(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        v = self._vix
        return v.loc[pd.Timestamp(start or v.index[0]):pd.Timestamp(end or v.index[-1])]

    def chains(self, bars: pd.DataFrame) -> ChainSource:
        from data_factory.chains import ModelChainSource

        return ModelChainSource(spot=bars["close"], vix=self._vix, underlying=self.underlying)
