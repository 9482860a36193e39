"""Stale daily opens: detection, the modelled gap, causality, and the gap feature switching off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_factory.embedded import EmbeddedMarket
from data_factory.stale_opens import (
    describe_line,
    detect_stale_opens,
    model_stale_opens,
    stale_open_counts,
)
from intelligence.pipeline import _market_structure, open_is_modelled


def _frame(opens, highs, lows, closes, start="2020-01-02") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=len(closes), name="date")
    return pd.DataFrame({"open": opens, "high": highs, "low": lows, "close": closes,
                         "volume": np.full(len(closes), 1e6)}, index=idx)


def _walk(n: int, seed: int, at_extreme_every: int | None) -> pd.DataFrame:
    """A daily frame with genuine gaps; every ``at_extreme_every``-th open sits at the low."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    prev = np.r_[100.0, close[:-1]]
    opens = prev * np.exp(0.004 * rng.standard_normal(n))
    high = np.maximum(opens, close) * (1 + 0.004 * rng.random(n) + 1e-4)
    low = np.minimum(opens, close) * (1 - 0.004 * rng.random(n) - 1e-4)
    if at_extreme_every:
        pick = np.arange(n) % at_extreme_every == 0
        low[pick] = opens[pick]
    return _frame(opens, high, low, close)


def test_open_equal_to_previous_close_is_flagged_first_row_never():
    f = _frame([10.0, 10.5, 10.7, 11.05], [10.6, 10.9, 11.2, 11.3], [9.9, 10.4, 10.6, 10.9], [10.5, 10.8, 11.0, 11.1])
    flags = detect_stale_opens(f)
    assert flags.tolist() == [False, True, False, False]
    nudged = f.assign(open=[10.0, 10.5 * (1 + 1e-4), 10.7, 11.05])  # one basis point away: a real open
    assert not detect_stale_opens(nudged).any()


def test_every_open_inside_a_pinned_era_is_flagged_from_earlier_rows_only():
    pinned = _walk(200, 2, at_extreme_every=3)  # a third of opens at the low: vendor-stretched ranges
    genuine = _walk(200, 2, at_extreme_every=20)  # 5%: opens that really were the low
    flags = detect_stale_opens(pinned)
    assert flags[40:].all()  # once the era is established every open is unusable, at the low or not
    assert not detect_stale_opens(genuine).any()
    assert not flags[:20].any()  # fewer than 20 earlier sessions: no era is declared
    # causal: the flag of day D does not read D's high or low (known only at the close)
    moved = pinned.copy()
    moved.loc[moved.index[100], ["high", "low"]] = [moved["open"].iloc[100] * 1.05, moved["open"].iloc[100] * 0.95]
    assert detect_stale_opens(moved)[100] == flags[100]


@pytest.fixture(scope="module")
def spy_daily() -> pd.DataFrame:
    """The vendor's S&P 500 bars as shipped by ``arch`` (before any modelling), / 10 like SPY."""
    from arch.data import sp500

    raw = sp500.load()
    frame = raw[["Open", "High", "Low", "Close", "Volume"]].astype(float) / [10, 10, 10, 10, 1]
    frame.columns = ["open", "high", "low", "close", "volume"]
    frame.index = pd.DatetimeIndex(raw.index).as_unit("ns").normalize().rename("date")
    assert len(frame) == len(EmbeddedMarket(seed=7).daily_bars())  # the same sessions as the embedded source
    return frame


def test_modelled_opens_stay_inside_the_day_and_leave_the_rest(spy_daily):
    out = model_stale_opens(spy_daily, seed=7)
    flags = out["open_modelled"].to_numpy()
    assert out["open_modelled"].dtype == bool
    assert ((out["low"] > 0) & (out["low"] <= out["open"]) & (out["open"] <= out["high"])).all()
    pd.testing.assert_frame_equal(out.drop(columns=["open", "open_modelled"]), spy_daily.drop(columns=["open"]))
    np.testing.assert_array_equal(out["open"].to_numpy()[~flags], spy_daily["open"].to_numpy()[~flags])
    prev = spy_daily["close"].shift(1).to_numpy()
    assert not np.isclose(out["open"].to_numpy()[flags], prev[flags], rtol=1e-9, atol=0).any()
    # the modelled opens no longer pile up on the high or low (no clipping artefact)
    o, h, lo = (out[c].to_numpy()[flags] for c in ("open", "high", "low"))
    assert np.mean(np.isclose(o, h, rtol=1e-9) | np.isclose(o, lo, rtol=1e-9)) < 0.01


def test_model_is_deterministic_per_seed_and_date(spy_daily):
    part = spy_daily.loc["2003-01-01":"2003-12-31"]
    a, b = model_stale_opens(part, seed=11), model_stale_opens(part, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = model_stale_opens(part, seed=12)
    flags = a["open_modelled"].to_numpy()
    assert (a["open"].to_numpy()[flags] != c["open"].to_numpy()[flags]).mean() > 0.9


@pytest.mark.parametrize("cut", ["2001-09-20", "2008-10-10", "2016-12-27", "2017-03-01"])
def test_truncation_modelled_opens_up_to_d_ignore_later_data(spy_daily, cut):
    full = model_stale_opens(spy_daily, seed=7).loc[:cut]
    short = model_stale_opens(spy_daily.loc[:cut], seed=7)
    pd.testing.assert_frame_equal(full, short)
    np.testing.assert_array_equal(detect_stale_opens(spy_daily)[: len(short)], detect_stale_opens(spy_daily.loc[:cut]))


def test_flag_frequencies_per_era_on_the_embedded_file(spy_daily):
    flags = pd.Series(detect_stale_opens(spy_daily), index=spy_daily.index)
    by_year = flags.groupby(flags.index.year).mean()
    assert flags.loc["1999-02-01":"2005-12-31"].mean() > 0.95  # open = previous close era
    assert flags.loc["2006":"2016-12-28"].mean() > 0.95  # inside the pinned-open era every open is flagged
    assert by_year.loc[2017] == 0.0 and by_year.loc[2018] == 0.0  # genuine opens
    counts = stale_open_counts(spy_daily)
    assert counts["flagged"] == int(flags.sum())
    assert counts["open_eq_prev_close"] > 1900 and counts["open_pinned_high_low"] > 1300
    # the modelled overnight variance share is of the order of the genuine 2017-2018 one (0.16-0.26)
    out = model_stale_opens(spy_daily, seed=7).loc["1999-02-01":"2005-12-31"]
    prev = spy_daily["close"].shift(1).loc[out.index]
    share = (np.log(out["open"] / prev) ** 2).sum() / (np.log(out["close"] / prev) ** 2).sum()
    assert 0.08 < share < 0.3
    assert "modelled open" in describe_line(model_stale_opens(spy_daily.loc["2017"], seed=7))
    assert describe_line(spy_daily).startswith(f"stale opens: {int(flags.sum())} of {len(spy_daily)} days")


def test_gap_feature_is_nan_on_modelled_opens():
    daily = _frame([100.0, 101.0, 99.0], [101.5, 102.0, 100.0], [99.5, 100.5, 98.0], [101.0, 100.0, 99.5])
    idx = pd.DatetimeIndex(["2020-01-03 09:35", "2020-01-03 10:00", "2020-01-06 09:35"]).tz_localize("America/New_York")
    bars = pd.DataFrame({"close": [101.0, 101.2, 99.1]}, index=idx)
    assert not open_is_modelled(daily).any()  # no column: every open is real
    feats: dict[str, np.ndarray] = {}
    _market_structure(feats, bars, daily, None)
    np.testing.assert_allclose(feats["gap"], [0.0, 0.0, -0.01])
    feats = {}
    _market_structure(feats, bars, daily.assign(open_modelled=[False, True, False]), None)
    assert np.isnan(feats["gap"][:2]).all() and feats["gap"][2] == pytest.approx(-0.01)
