"""Indicators pinned to TA-Lib; realized vol / IV rank / percentile pinned to hand-worked numbers and scipy."""

from __future__ import annotations

import arch.data.nasdaq
import numpy as np
import pandas as pd
import pytest
import talib
from scipy.stats import percentileofscore

from analytics import indicators as ind
from analytics import volatility as vol

TOL = 1e-8


def _five_minute_bars(n_days: int = 30, seed: int = 11) -> pd.DataFrame:
    """A realistic random 5-minute OHLCV series (78 bars a day, U-shaped vol and volume)."""
    rng = np.random.default_rng(seed)
    n = 78 * n_days
    u = np.tile(np.linspace(-1.0, 1.0, 78), n_days)
    sigma = 0.16 / np.sqrt(252 * 78) * (0.7 + 0.8 * u**2)
    r = sigma * rng.standard_normal(n)
    close = 270.0 * np.exp(np.cumsum(r))
    opn = np.r_[270.0, close[:-1]]
    high = np.maximum(opn, close) + np.abs(rng.standard_normal(n)) * sigma * close
    low = np.minimum(opn, close) - np.abs(rng.standard_normal(n)) * sigma * close
    volume = np.round(1e6 * (0.6 + 1.2 * u**2) * rng.lognormal(0.0, 0.4, n))
    return pd.DataFrame({"open": opn, "high": high, "low": low, "close": close, "volume": volume})


def _nasdaq() -> pd.DataFrame:
    d = arch.data.nasdaq.load()
    return pd.DataFrame({k.lower(): d[k].to_numpy(dtype=float) for k in ("Open", "High", "Low", "Close", "Volume")})


def _flat_stretch() -> pd.DataFrame:
    """Random bars with 350 identical flat bars in the middle (long enough for every TA-Lib zero guard)."""
    b = _five_minute_bars(8, seed=5)
    b.loc[100:449, ["open", "high", "low", "close"]] = 270.0
    return b


def _constant_start() -> pd.DataFrame:
    """40 identical bars with a fixed range, then random bars: ADX holds, then starts updating."""
    b = _five_minute_bars(2, seed=9)
    b.loc[:39, ["open", "close"]] = 270.0
    b.loc[:39, "high"], b.loc[:39, "low"] = 270.5, 269.5
    return b


SERIES = {
    "nasdaq_daily": _nasdaq, "five_minute": _five_minute_bars, "flat_stretch": _flat_stretch,
    "constant_start": _constant_start,
}


def assert_matches(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same warm-up (NaN) positions and equal values to 1e-8 (relative, absolute floor 1e-8)."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert ok.sum() > 0
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=TOL, atol=TOL)


@pytest.fixture(params=list(SERIES), scope="module")
def bars(request) -> pd.DataFrame:
    return SERIES[request.param]()


def test_rsi_atr_sma_ema_match_talib(bars):
    h, lo, c, v = (bars[k].to_numpy() for k in ("high", "low", "close", "volume"))
    assert_matches(ind.rsi(c, 14), talib.RSI(c, 14))
    assert_matches(ind.atr(h, lo, c, 14), talib.ATR(h, lo, c, 14))
    assert_matches(ind.sma(c, 20), talib.SMA(c, 20))
    assert_matches(ind.ema(c, 20), talib.EMA(c, 20))
    assert_matches(ind.true_range(h, lo, c), talib.TRANGE(h, lo, c))
    assert_matches(ind.sma_distance(c, 20), (c - talib.SMA(c, 20)) / talib.SMA(c, 20))
    assert_matches(ind.volume_ratio(v, 20), v / talib.SMA(v, 20))


def test_adx_and_directional_indicators_match_talib(bars):
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    dmi = ind.adx(h, lo, c, 14)
    assert_matches(dmi.adx, talib.ADX(h, lo, c, 14))
    assert_matches(dmi.plus_di, talib.PLUS_DI(h, lo, c, 14))
    assert_matches(dmi.minus_di, talib.MINUS_DI(h, lo, c, 14))


def test_bollinger_matches_talib_population_sigma(bars):
    c = bars["close"].to_numpy()
    bb = ind.bollinger(c, 20, 2.0)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA)
    assert_matches(bb.upper, upper)
    assert_matches(bb.middle, middle)
    assert_matches(bb.lower, lower)
    span = upper - lower
    live = span > 0
    np.testing.assert_allclose(bb.position[live], (c[live] - lower[live]) / span[live], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(bb.width[live], span[live] / middle[live], rtol=TOL, atol=TOL)
    assert np.all(np.isnan(bb.position[~live]))


def test_stochastic_is_talib_stochf_14_3(bars):
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    st = ind.stochastic(h, lo, c, 14, 3)
    fastk_1, _ = talib.STOCHF(h, lo, c, fastk_period=14, fastd_period=1, fastd_matype=talib.MA_Type.SMA)
    _, fastd = talib.STOCHF(h, lo, c, fastk_period=14, fastd_period=3, fastd_matype=talib.MA_Type.SMA)
    assert_matches(st.k, fastk_1)
    assert_matches(st.d, fastd)


@pytest.mark.parametrize(("acc", "mx"), [(0.02, 0.20), (0.025, 0.25)])
def test_parabolic_sar_matches_talib(bars, acc, mx):
    h, lo = bars["high"].to_numpy(), bars["low"].to_numpy()
    assert_matches(ind.parabolic_sar(h, lo, acc, mx), talib.SAR(h, lo, acceleration=acc, maximum=mx))


def test_flat_stretch_freezes_ratios():
    b = _flat_stretch()
    h, lo, c = (b[k].to_numpy() for k in ("high", "low", "close"))
    flat = slice(440, 450)  # end of the flat run: Wilder averages decay at one rate, their ratios stay
    assert np.all(ind.bollinger(c).upper[flat] == 270.0)
    assert np.all(ind.stochastic(h, lo, c).k[flat] == 0.0)
    np.testing.assert_allclose(ind.rsi(c)[flat], ind.rsi(c)[440], rtol=1e-12)
    np.testing.assert_allclose(ind.adx(h, lo, c).plus_di[flat], ind.adx(h, lo, c).plus_di[440], rtol=1e-12)


def test_constant_series_hits_zero_guards_like_talib():
    c = np.full(60, 100.0)
    h, lo = c + 0.5, c - 0.5  # true range 1, no directional movement: ±DI = 0, DX undefined
    dmi = ind.adx(h, lo, c)
    np.testing.assert_array_equal(ind.rsi(c)[14:], talib.RSI(c, 14)[14:])
    assert np.all(ind.rsi(c)[14:] == 0.0)
    assert np.all(dmi.plus_di[14:] == 0.0)
    assert np.all(dmi.adx[27:] == 0.0)
    np.testing.assert_array_equal(dmi.adx[27:], talib.ADX(h, lo, c, 14)[27:])
    flat = ind.adx(c, c, c)  # zero true range as well
    np.testing.assert_array_equal(flat.minus_di[14:], talib.MINUS_DI(c, c, c, 14)[14:])
    assert np.isnan(ind.bollinger(c).position[19:]).all()


def test_psar_position_and_rsi_hand_worked():
    np.testing.assert_allclose(ind.psar_position([101.0, 99.0, 110.0], [100.0, 100.0, 100.0], [1.0, 1.0, 2.0]),
                               [0.5, -0.5, 1.0])
    # gains 1, 1, then a loss of 1 and a gain of 1 with n = 2: avg gain 1 -> 0.5 -> 0.75, avg loss 0 -> 0.5 -> 0.25
    np.testing.assert_allclose(ind.rsi([1.0, 2.0, 3.0, 2.0, 3.0], 2)[2:], [100.0, 50.0, 75.0])


def test_realized_vol_hand_worked():
    close = np.exp(np.cumsum([0.0, 0.01, -0.02, 0.01, 0.03]))
    rv = vol.realized_vol(close, window=2, bars_per_day=78)
    expected = np.sqrt(252 * 78 / 2 * np.array([0.01**2 + 0.02**2, 0.02**2 + 0.01**2, 0.01**2 + 0.03**2]))
    np.testing.assert_allclose(rv[2:], expected, rtol=1e-12)
    assert np.isnan(rv[:2]).all()
    # daily bars: sqrt(252/N · Σ r²) with N = 4 returns
    assert vol.realized_vol(close, 4)[4] == pytest.approx(np.sqrt(252 / 4 * (1e-4 + 4e-4 + 1e-4 + 9e-4)), rel=1e-12)


def test_iv_rank_and_percentile_literal():
    iv = np.array([0.20, 0.10, 0.30, 0.25, 0.15])
    np.testing.assert_allclose(vol.iv_rank(iv, window=3), [np.nan, np.nan, 100.0, 75.0, 0.0])
    np.testing.assert_allclose(vol.iv_percentile(iv, window=3), [np.nan, np.nan, 100.0, 50.0, 0.0])
    np.testing.assert_allclose(vol.iv_rank(iv, window=3, min_periods=2), [np.nan, 0.0, 100.0, 75.0, 0.0])
    assert np.isnan(vol.iv_rank(np.array([0.2, 0.2, 0.2]), window=3)[2])  # max == min


def test_iv_percentile_equals_scipy_strict_on_prior_window():
    rng = np.random.default_rng(3)
    iv = 0.15 + 0.05 * rng.standard_normal(400)
    ours = vol.iv_percentile(iv, window=252)
    for t in (251, 300, 399):
        assert ours[t] == pytest.approx(percentileofscore(iv[t - 251:t], iv[t], kind="strict"), abs=1e-12)
    assert np.isnan(ours[250])
    s = vol.sigma_star(iv, window=252)
    assert s[399] == pytest.approx(ours[399] / 100.0)


def test_vrp_and_gate():
    v = vol.vrp([0.20, 0.15, np.nan], [0.17, 0.14, 0.1])
    np.testing.assert_allclose(v[:2], [0.03, 0.01])
    np.testing.assert_array_equal(vol.vrp_gate(v, 0.02), [True, False, False])
