"""Market-structure features: literal numbers at and around every SPEC §3 threshold."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from analytics.market_structure import (
    carry_basis,
    classify_gaps,
    daily_gaps,
    es_divergence,
    fair_forward,
    is_small_gap,
    is_steep_skew,
    put_wing_extra,
    ratio_bias,
    ratio_zscore,
    session_gaps,
    skew_metric,
    slice_skew,
)
from core.config import GatesConfig
from core.dto import ExpirySlice


def test_skew_metric_and_steep_threshold() -> None:
    skew = skew_metric([0.20, 0.2005, 0.1995], [0.17, 0.17, 0.17], [0.20, 0.20, 0.20])
    np.testing.assert_allclose(skew, [0.15, 0.1525, 0.1475], rtol=0, atol=1e-12)
    # exactly 0.15 is not "above 0.15"
    np.testing.assert_array_equal(is_steep_skew(skew), [False, True, False])
    np.testing.assert_array_equal(put_wing_extra(skew), [0.0, 5.0, 0.0])


def _slice() -> ExpirySlice:
    strikes = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    put_delta = np.array([-0.05, -0.10, -0.20, -0.50, -0.80])
    call_delta = np.array([0.95, 0.80, 0.55, 0.20, 0.10])
    put_iv = np.array([0.26, 0.24, 0.22, 0.20, 0.19])
    call_iv = np.array([0.25, 0.23, 0.20, 0.18, 0.17])
    z = np.zeros(5)
    return ExpirySlice(
        expiry=dt.date(2018, 3, 16), dte=30, tau=30 / 365, strikes=strikes,
        call_bid=z, call_ask=z, call_iv=call_iv, call_delta=call_delta, call_gamma=z, call_theta=z,
        call_vega=z, call_volume=z, call_oi=z,
        put_bid=z, put_ask=z, put_iv=put_iv, put_delta=put_delta, put_gamma=z, put_theta=z,
        put_vega=z, put_volume=z, put_oi=z,
    )


def test_slice_skew_interpolates_in_delta_and_strike() -> None:
    reading = slice_skew(_slice(), spot=102.0)
    # put |delta| 0.10 -> 0.24, 0.20 -> 0.22: at 0.15 -> 0.23
    assert reading.iv_put_wing == pytest.approx(0.23, abs=1e-12)
    # call |delta| 0.10 -> 0.17, 0.20 -> 0.18: at 0.15 -> 0.175
    assert reading.iv_call_wing == pytest.approx(0.175, abs=1e-12)
    # mid IV 0.21 at 100 and 0.19 at 105: at 102 -> 0.202
    assert reading.iv_atm == pytest.approx(0.202, abs=1e-12)
    assert reading.skew == pytest.approx(0.055 / 0.202, abs=1e-12)


def test_gap_thresholds_small_and_direction() -> None:
    opens = [100.19, 100.20, 99.81, 99.80, 100.01, 100.02, 99.99, 99.98, 100.0]
    out = classify_gaps(opens, [100.0] * 9)
    np.testing.assert_allclose(
        out["gap"], [0.0019, 0.002, -0.0019, -0.002, 0.0001, 0.0002, -0.0001, -0.0002, 0.0], atol=1e-12
    )
    small = is_small_gap(out["gap"], GatesConfig().max_gap_pct)  # SPEC §3: 0.0019
    assert small.tolist() == [True, False, True, False, True, True, True, True, True]
    assert out["direction"].tolist() == [1, 1, -1, -1, 0, 1, 0, -1, 0]


def test_daily_and_session_gaps_use_previous_close() -> None:
    daily = pd.DataFrame(
        {"open": [100.0, 101.5, 100.9], "close": [101.0, 101.0, 101.2]},
        index=pd.DatetimeIndex(["2018-01-02", "2018-01-03", "2018-01-04"], name="date"),
    )
    g = daily_gaps(daily)
    assert math.isnan(g["gap"].iloc[0])
    assert g["gap"].iloc[1:].tolist() == pytest.approx([0.5 / 101.0, -0.1 / 101.0])
    assert g["direction"].tolist() == [0, 1, -1]
    idx = pd.DatetimeIndex(
        ["2018-01-02 09:35", "2018-01-02 16:00", "2018-01-03 09:35", "2018-01-03 16:00"], tz="America/New_York"
    )
    bars = pd.DataFrame({"open": [100.0, 100.5, 101.25, 101.0], "close": [100.4, 101.1, 101.2, 101.4]}, index=idx)
    sg = session_gaps(bars)
    assert sg["gap"].iloc[1] == pytest.approx(0.15 / 101.1)
    assert is_small_gap(sg["gap"], 0.0019).tolist() == [False, True]  # first session has no previous close
    assert sg["direction"].tolist() == [0, 1]


def test_ratio_zscore_hand_worked_window_and_causal() -> None:
    spy = pd.Series([100.0, 102.0, 101.0, 104.0, 99.0])
    qqq = pd.Series([100.0] * 5)
    z = ratio_zscore(spy, qqq, window=3)
    # window (1.02, 1.01, 1.04): mean 1.0233.., sd 0.015275..; z = (1.04 - mean) / sd
    w = np.array([1.02, 1.01, 1.04])
    assert z.iloc[3] == pytest.approx((1.04 - w.mean()) / w.std(ddof=1), rel=1e-12)
    assert z.iloc[:2].isna().all()
    rng = np.random.default_rng(11)
    spy_l = pd.Series(270 + rng.normal(0, 1, 120).cumsum())
    qqq_l = pd.Series(160 + rng.normal(0, 1, 120).cumsum())
    full = ratio_zscore(spy_l, qqq_l)
    part = ratio_zscore(spy_l.iloc[:80], qqq_l.iloc[:80])
    pd.testing.assert_series_equal(full.iloc[:80], part)
    last = (spy_l / qqq_l).iloc[30:80].to_numpy()
    assert full.iloc[79] == pytest.approx((last[-1] - last.mean()) / last.std(ddof=1), rel=1e-10)


def test_ratio_bias_thresholds() -> None:
    z = pd.Series([2.0, 2.0001, -2.0, -2.0001, 0.3, np.nan])
    assert ratio_bias(z, GatesConfig().ratio_z_threshold).tolist() == [0, -1, 0, 1, 0, 0]  # SPEC §3: 2


def test_cost_of_carry_and_backwardation() -> None:
    assert float(fair_forward(100.0, 0.05, 0.01, 0.5)) == pytest.approx(102.02013400267558, rel=1e-14)
    out = carry_basis([100.0, 100.0, 100.0], [101.0, 99.5, 100.0], 0.05, 0.01, 0.5)
    assert out["basis"].tolist() == pytest.approx([1.0, -0.5, 0.0])
    assert out["basis_residual"].tolist() == pytest.approx([-1.02013400267558, -2.52013400267558, -2.02013400267558])
    assert out["backwardation"].tolist() == [False, True, False]


def test_spy_es_divergence_threshold() -> None:
    spy = [270.0, 271.35, 271.4, 268.65, 268.6]
    out = es_divergence(spy, [2700.0] * 5)
    assert out["spy_equiv"].tolist() == [270.0] * 5
    np.testing.assert_allclose(out["divergence"], [0.0, 0.005, 1.4 / 270, -0.005, -1.4 / 270], atol=1e-12)
    assert out["signal"].tolist() == [0, 0, 1, 0, -1]
