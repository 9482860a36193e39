"""compute_features is causal: features of bars[:t+1] equal the full-series features at t."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_factory.synthetic import SyntheticMarket
from intelligence.features import FEATURE_COLUMNS, FeatureParams, compute_features
from intelligence.fuzzy import FACTORS

INTRADAY_DAYS = 12


@pytest.fixture(scope="module")
def market():
    m = SyntheticMarket("2017-01-03", "2017-06-09", seed=21)  # ~100 sessions of daily history before intraday
    days = m.daily_bars().index
    first, last = days[-INTRADAY_DAYS].date(), days[-1].date()
    return m.intraday_bars(first, last, 5), m.intraday_bars(first, last, 1), m.daily_bars(), m.vix()


@pytest.fixture(scope="module")
def full(market):
    b5, b1, daily, vix = market
    return compute_features(b5, daily, vix, (1, 5, 15), b1)


def _same(a: object, b: object) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b)) or a == b


def _truncated(market, t: int, daily_before_today: bool):
    b5, b1, daily, vix = market
    ts = b5.index[t]
    day = pd.Timestamp(ts.date())
    keep_daily = daily.index < day if daily_before_today else daily.index <= day
    keep_vix = vix.index < day if daily_before_today else vix.index <= day
    return compute_features(b5.iloc[: t + 1], daily[keep_daily], vix[keep_vix], (1, 5, 15), b1[b1.index <= ts])


def test_columns_documented_and_read_only(full):
    assert set(FEATURE_COLUMNS) | {"mtf_signal_1", "mtf_signal_5", "mtf_signal_15"} == set(full.names)
    assert all(f"mu_{f}" in full.names for f in FACTORS)
    with pytest.raises(ValueError, match="read-only"):
        full["rsi"][0] = 1.0
    last = full.row(len(full) - 1)
    assert last["regime_name"] in {"LOW_VOL_RANGE", "HIGH_VOL_RANGE", "BULL_TREND", "BEAR_TREND", "CRASH_MODE"}
    assert np.isfinite(last["fuzzy_confidence"])
    assert np.isfinite(last["iv_rank"])
    assert last["mtf_reason"] == ""
    assert len(full.to_frame()) == len(full)


@pytest.mark.parametrize("daily_before_today", [False, True])
def test_prefix_features_equal_full_features(market, full, daily_before_today):
    rng = np.random.default_rng(5)
    n = len(full)
    points = sorted({0, 1, 30, 79, n - 1, *rng.integers(0, n, size=5).tolist()})
    for t in points:
        part = _truncated(market, t, daily_before_today)
        want, got = full.row(t), part.row(t)
        bad = [k for k in want if not _same(want[k], got[k])]
        assert not bad, f"t={t}: {[(k, want[k], got[k]) for k in bad]}"


def test_todays_daily_close_and_vix_never_leak(market, full):
    b5, b1, daily, vix = market
    t = len(b5) - 40  # inside the last session
    day = pd.Timestamp(b5.index[t].date())
    daily2, vix2 = daily.copy(), vix.copy()
    daily2.loc[day, ["high", "low", "close"]] = [1e4, 1.0, 5e3]
    vix2.loc[day, "vix"] = 90.0
    shocked = compute_features(b5, daily2, vix2, (1, 5, 15), b1)
    for name in full.names:
        np.testing.assert_array_equal(shocked[name], full[name], err_msg=name)


def test_daily_inputs_come_from_previous_session(market, full):
    b5, _, daily, vix = market
    t = len(b5) - 1
    day = pd.Timestamp(b5.index[t].date())
    prev = daily.index[daily.index < day][-1]
    assert full["prev_close"][t] == daily.loc[prev, "close"]
    assert full["vix"][t] == vix.loc[prev, "vix"]
    assert full["day_return"][t] == pytest.approx(b5["close"].iloc[t] / daily.loc[prev, "close"] - 1)
    assert full["iv_atm"][t] == pytest.approx(vix.loc[prev, "vix"] / 100)


def test_custom_params_and_iv_atm(market):
    b5, b1, daily, vix = market
    iv = np.full(len(b5), 0.5)
    f = compute_features(b5, daily, vix, (5, 15), None, iv_atm=iv, params=FeatureParams(mtf_require_all=False))
    assert f["vrp_ok"].all()
    assert "mtf_signal_1" not in f.names
    assert f["mtf_available"][-1]
