"""Regime classification on constructed inputs and series; MTF closed-bar visibility and missing data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analytics import indicators as ind
from core.config import MTFConfig
from core.dto import ConfigError, Regime
from data_factory.synthetic import SyntheticMarket
from intelligence import mtf
from intelligence.regime import (
    REGIME_CODE,
    UNKNOWN_CODE,
    RegimeThresholds,
    classify_regime,
    regime_names,
    regime_of,
    regime_wing_multiplier,
    regime_wing_width,
    time_in_regime,
)

LOW, HIGH = REGIME_CODE[Regime.LOW_VOL_RANGE], REGIME_CODE[Regime.HIGH_VOL_RANGE]
BULL, BEAR = REGIME_CODE[Regime.BULL_TREND], REGIME_CODE[Regime.BEAR_TREND]
CRASH = REGIME_CODE[Regime.CRASH_MODE]
NAN = np.nan


def test_regime_rules_on_constructed_rows():
    rows = [  # close, adx, sma_fast, sma_slow, vix, ivr, vix_change, day_return -> expected
        (100, 30, 100, 100, 40, 10, 0.0, 0.0, CRASH),
        (110, 30, 105, 100, 15, 10, 0.0, 0.0, BULL),
        (90, 30, 95, 100, 15, 10, 0.0, 0.0, BEAR),
        (103, 30, 105, 100, 22, 10, 0.0, 0.0, HIGH),  # ADX high but close below the fast SMA: no trend
        (100, 15, 100, 100, 14, 60, 0.0, 0.0, HIGH),  # high IV rank
        (100, 15, 100, 100, 14, 20, 0.0, 0.0, LOW),
        (100, NAN, 100, 100, 14, 20, 0.0, 0.0, UNKNOWN_CODE),  # ADX still warming up
        (100, NAN, NAN, NAN, 36, NAN, NAN, NAN, CRASH),  # a crash needs no trend inputs
        (100, 15, 100, 100, 14, 20, 0.0, -0.05, CRASH),  # down 5% on the previous close
        (100, 15, 100, 100, 14, 20, 0.0, -0.03, CRASH),  # down exactly 3%: a crash even at VIX 14
        (100, 15, 100, 100, 14, 20, 0.0, -0.018, LOW),  # an ordinary -1.8% day is no crash
        (95, 10, 98, 100, 26, NAN, 0.25, 0.0, CRASH),  # VIX +25% to 26 with price under both SMAs
        (95, 10, 98, 100, 25, NAN, 0.20, 0.0, CRASH),  # both jump boundaries are inclusive
        (95, 10, 98, 100, 15.6, NAN, 0.46, 0.0, LOW),  # 2017-05-18: VIX +46% but only to 15.6: no crash
        (102, 10, 98, 100, 26, NAN, 0.25, 0.0, HIGH),  # VIX jump alone, price above: no crash
        (100, 25, 99, 98, 20, NAN, 0.0, 0.0, BULL),  # boundaries: ADX >= 25 trends, VIX >= 20 is high
    ]
    cols = np.array([r[:-1] for r in rows], dtype=float).T
    close, adx, fast, slow, vix, ivr, jump, ret = cols
    codes = classify_regime(close, adx, fast, slow, vix, iv_rank=ivr, vix_change=jump, day_return=ret)
    np.testing.assert_array_equal(codes, [r[-1] for r in rows])
    assert regime_names(codes)[6] == "UNKNOWN"
    assert regime_names(codes)[0] == "CRASH_MODE"
    assert regime_of(codes[1]) is Regime.BULL_TREND
    assert regime_of(UNKNOWN_CODE) is None


def _daily_series(drift: float, seed: int, n: int = 120) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    close = 100.0 * np.exp(drift * t + 0.002 * rng.standard_normal(n)) + (3.0 * np.sin(t / 1.6) if drift == 0 else 0)
    high, low = close * 1.004, close * 0.996
    dmi = ind.adx(high, low, close, 14)
    return close, dmi.adx, ind.sma(close, 20), ind.sma(close, 50)


@pytest.mark.parametrize(
    ("drift", "vix", "expected"),
    [(0.004, 14.0, BULL), (-0.004, 14.0, BEAR), (0.0, 14.0, LOW), (0.0, 24.0, HIGH), (0.004, 38.0, CRASH)],
)
def test_regime_on_constructed_price_series(drift, vix, expected):
    close, adx, fast, slow = _daily_series(drift, seed=1)
    codes = classify_regime(close, adx, fast, slow, np.full(len(close), vix))
    assert (codes[:27] == UNKNOWN_CODE).all() or expected == CRASH  # warm-up of ADX / SMA50
    assert (codes[60:] == expected).all()


def test_time_in_regime_and_wings():
    np.testing.assert_array_equal(time_in_regime([0, 0, 1, 1, 1, -1, -1, 0]), [0, 1, 0, 1, 2, 0, 1, 0])
    assert regime_wing_multiplier(Regime.LOW_VOL_RANGE) < regime_wing_multiplier(Regime.BULL_TREND)
    assert regime_wing_multiplier(Regime.HIGH_VOL_RANGE) < regime_wing_multiplier(Regime.CRASH_MODE)
    assert regime_wing_width(10, Regime.HIGH_VOL_RANGE, 5, 20) == 15.0
    assert regime_wing_width(10, Regime.LOW_VOL_RANGE, 5, 10) == 8.0
    assert regime_wing_width(5, Regime.LOW_VOL_RANGE, 5, 10) == 5.0  # 4 clipped up to the minimum
    assert regime_wing_width(10, Regime.CRASH_MODE, 5, 10) == 10.0
    assert regime_wing_width(7, None, 5, 10) == 7.0
    with pytest.raises(ConfigError):
        RegimeThresholds(high_vol_vix=40.0)
    with pytest.raises(ConfigError):
        RegimeThresholds(trend_adx=-1.0)


# ---------------------------------------------------------------- MTF


@pytest.fixture(scope="module")
def market() -> SimpleNamespace:
    """One- and five-minute bars of ten NYSE sessions without a holiday (seeded synthetic market)."""
    m = SyntheticMarket("2017-03-06", "2017-03-17", seed=3)
    return SimpleNamespace(bars_1m=m.intraday_bars("2017-03-06", "2017-03-17", 1),
                           bars_5m=m.intraday_bars("2017-03-06", "2017-03-17", 5))


def _at(index: pd.DatetimeIndex, stamp: str) -> int:
    return int(index.get_loc(pd.Timestamp(stamp, tz="America/New_York")))


def test_mtf_sees_only_closed_higher_bars(market):
    b5, b1 = market.bars_5m, market.bars_1m
    f15 = mtf.resample_close_labelled(b5, 15)
    res = mtf.mtf_consensus({1: b1, 5: b5, 15: f15}, b5.index)
    s15 = mtf.timeframe_signal(f15)
    i_1000, i_0955 = _at(b5.index, "2017-03-14 10:00"), _at(b5.index, "2017-03-14 09:55")
    assert res.signals[15][i_1000] == s15[_at(f15.index, "2017-03-14 10:00")]
    assert res.signals[15][i_0955] == s15[_at(f15.index, "2017-03-14 09:45")]
    assert res.signals[1][i_0955] == mtf.timeframe_signal(b1)[_at(b1.index, "2017-03-14 09:55")]
    mean = (res.signals[1][i_1000] + res.signals[5][i_1000] + res.signals[15][i_1000]) / 3
    assert res.consensus[i_1000] == pytest.approx((mean + 1) / 2)
    assert res.available[i_1000]
    # a shock in the 15m bar labelled 10:00 is invisible before 10:00
    shocked = f15.copy()
    shocked.loc[pd.Timestamp("2017-03-14 10:00", tz="America/New_York"), "close"] *= 1.05
    res2 = mtf.mtf_consensus({1: b1, 5: b5, 15: shocked}, b5.index)
    np.testing.assert_array_equal(res2.signals[15][:i_1000], res.signals[15][:i_1000])
    assert res2.signals[15][i_1000] != res.signals[15][i_1000]


def test_missing_timeframe_makes_factor_unavailable_with_reason(market):
    b5 = market.bars_5m
    f15 = mtf.resample_close_labelled(b5, 15)
    res = mtf.mtf_consensus({5: b5, 15: f15}, b5.index)  # no one-minute bars
    assert not res.available.any()
    assert np.isnan(res.consensus).all()
    assert "1m: bars absent" in res.reasons[-1]
    loose = mtf.mtf_consensus({5: b5, 15: f15}, b5.index, require_all=False)
    assert loose.available[-1]
    assert loose.reasons[-1] == ""
    assert loose.consensus[-1] == pytest.approx((loose.signals[5][-1] + loose.signals[15][-1]) / 4 + 0.5)
    empty = mtf.mtf_consensus({1: b5.iloc[:0], 5: b5}, b5.index, timeframes=(1, 5))
    assert "1m: bars absent" in empty.reasons[0]


def test_stale_and_not_yet_closed_reasons(market):
    b1, b5 = market.bars_1m, market.bars_5m
    f15 = mtf.resample_close_labelled(b5, 15)
    t = f15.index.tz_convert("America/New_York")
    gap = (t >= pd.Timestamp("2017-03-14 11:15", tz="America/New_York")) & (
        t <= pd.Timestamp("2017-03-14 12:00", tz="America/New_York"))
    res = mtf.mtf_consensus({1: b1, 5: b5, 15: f15[~gap]}, b5.index)
    i_1130, i_1215 = _at(b5.index, "2017-03-14 11:30"), _at(b5.index, "2017-03-14 12:15")
    assert res.reasons[i_1130] == "15m: stale"
    assert not res.available[i_1130]
    assert res.available[i_1215]
    assert res.reasons[i_1215] == ""
    assert res.available[_at(b5.index, "2017-03-14 11:10")]  # 11:00 bar is still the current slot's
    assert res.reasons[0].endswith("15m: no closed bar yet")
    assert "indicator warm-up" in res.reasons[20]


def test_mtf_gate_band():
    band = MTFConfig()  # SPEC §3: 0.40-0.60
    np.testing.assert_array_equal(mtf.mtf_gate(np.array([0.39, 0.40, 0.5, 0.60, 0.61, np.nan]), band.consensus_min,
                                               band.consensus_max), [False, True, True, True, False, False])
    np.testing.assert_array_equal(mtf.mtf_gate(np.array([0.3, 0.7]), lo=0.3, hi=0.7), [True, True])


@pytest.mark.parametrize("minutes", [15, 30, 60])
def test_local_resample_matches_data_factory(market, minutes):
    from data_factory.bars import resample_bars

    ours = mtf.resample_close_labelled(market.bars_5m, minutes)
    theirs = resample_bars(market.bars_5m, minutes)
    np.testing.assert_array_equal(mtf.local_ns(ours.index), mtf.local_ns(theirs.index))
    np.testing.assert_allclose(ours.to_numpy(), theirs[list(ours.columns)].to_numpy(), rtol=0, atol=0)
