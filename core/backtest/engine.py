"""Backtrader wiring — the only place (with its adapter) that imports backtrader.

Cerebro drives the clock over the base (5-minute) bars; higher timeframes are resampled once
with pandas before the run and handed to the decision core as aligned closed-bar arrays
(DESIGN.md: Backtrader's own ``resampledata`` would cut throughput by ~4x).
"""

from __future__ import annotations

from collections.abc import Callable

import backtrader as bt
import pandas as pd


def _feed(bars: pd.DataFrame) -> bt.feeds.PandasData:
    frame = bars[["open", "high", "low", "close", "volume"]].copy()
    idx = pd.DatetimeIndex(frame.index)
    frame.index = idx.tz_localize(None) if idx.tz is not None else idx
    frame["openinterest"] = 0.0
    return bt.feeds.PandasData(dataname=frame)


class _DriverAdapter(bt.Strategy):
    """Hands each bar's position in the series to the driver callback."""

    params = (("on_bar", None), ("progress", None))

    def next(self) -> None:
        i = len(self) - 1
        self.p.on_bar(i)
        if self.p.progress is not None and (i & 255) == 0:
            self.p.progress(i)


def run_clock(bars: pd.DataFrame, on_bar: Callable[[int], None],
              progress: Callable[[int], None] | None = None) -> None:
    """Run Cerebro over ``bars`` calling ``on_bar(i)`` once per bar, in order."""
    cerebro = bt.Cerebro(stdstats=False, runonce=True, preload=True)
    cerebro.adddata(_feed(bars))
    cerebro.addstrategy(_DriverAdapter, on_bar=on_bar, progress=progress)
    cerebro.run()


class _SmaRsi(bt.Strategy):
    """Plain Backtrader reference workload: SMA(20) trend + RSI(14) filter on shares."""

    def __init__(self) -> None:
        self.sma = bt.indicators.SimpleMovingAverage(self.data.close, period=20)
        self.rsi = bt.indicators.RSI(self.data.close, period=14)

    def next(self) -> None:
        if not self.position:
            if self.data.close[0] > self.sma[0] and self.rsi[0] < 70:
                self.buy(size=10)
        elif self.data.close[0] < self.sma[0] or self.rsi[0] > 80:
            self.close()


def run_plain_sma_rsi(bars: pd.DataFrame, cash: float = 100_000.0) -> float:
    """The benchmark baseline; returns the final portfolio value."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(cash)
    cerebro.adddata(_feed(bars))
    cerebro.addstrategy(_SmaRsi)
    cerebro.run()
    return float(cerebro.broker.getvalue())
