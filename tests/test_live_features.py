"""The live loop's rolling features equal the batch features at the same bar."""

from __future__ import annotations

import datetime as dt

import numpy as np

from core.backtest.market import build_market
from core.config import AppConfig
from core.dto import FEATURE_NAMES
from core.live.data import RollingFeatures, vix_proxy


def test_rolling_window_features_equal_batch_features():
    cfg = AppConfig().with_overrides({"run.progress": False})
    market = build_market(cfg)
    bars = market.intraday_bars(dt.date(2018, 2, 20), dt.date(2018, 3, 2), 5)
    daily = market.daily_bars(dt.date(2017, 1, 3), dt.date(2018, 3, 2))
    vix = vix_proxy(daily)  # what the live loop uses for the daily VIX
    rng = np.random.default_rng(3)
    vix_intraday = 15 + rng.random(len(bars))
    live = RollingFeatures(cfg)
    batch = live.compute(bars, daily, vix, vix_intraday)
    checked = 0
    for i in (40, 80, 79 + 78, len(bars) - 1):  # inside sessions, a first bar of a day, the last bar
        window = live.compute(bars.iloc[: i + 1], daily, vix, vix_intraday[: i + 1])
        last = window.values_at(len(window) - 1)
        want = batch.values_at(i)
        for name in FEATURE_NAMES:
            np.testing.assert_allclose(last[name], want[name], rtol=0, atol=1e-12, equal_nan=True, err_msg=name)
        assert window.row(len(window) - 1).mtf_reason == batch.row(i).mtf_reason
        checked += 1
    assert checked == 4
